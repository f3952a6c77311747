"""What every tmc process reports about itself: Prometheus metrics (named like kube-apiserver's) and JSON-lines
logging."""
