"""Merchant onboarding (SPEC §15): applications, their review, and the store an approval opens."""
