"""Distribution rewards: referral commissions, level difference, shareholder dividend (SPEC §14)."""
