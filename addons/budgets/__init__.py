"""Budgets: what a limit is (USD or tokens), which budgets apply to a call, the windows they count in,
the spend they have seen, and the rule that admits a call. Pure Python, no I/O: the stores keep the
spend (addons/stores/budget_memory.py, redis_budget.py) and the pipeline asks (addons/pipeline/budget.py).
"""
