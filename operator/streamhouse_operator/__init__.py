"""StreamHouse operator: reconciles StreamQuery resources into StatefulSets running the runtime."""
