"""The typed logical plan: what a query computes, independent of how the runtime executes it."""
