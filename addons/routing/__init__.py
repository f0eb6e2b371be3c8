"""Which (backend, model, key) to try, in what order: the model catalog, failover routes, the planner."""
