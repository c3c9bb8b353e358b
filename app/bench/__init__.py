"""`rebate bench`: the performance figures of issue-level targets, each beside its baseline."""
