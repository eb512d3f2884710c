"""Handler logic, independent of kopf's decorators (registered in streamhouse_operator.main)."""
