"""Real services for tests and the demo: an Apache Kafka broker and a Kubernetes control plane.

Both are started from binaries our own scripts build and cache (`scripts/build-kafka.sh`,
`scripts/build-k8s.sh`), bind 127.0.0.1 on free ports, keep their data in a temporary folder
and are torn down when the test session ends.
"""
