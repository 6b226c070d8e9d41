"""CloudWatch metrics of the twin: its load balancers' and tasks' metrics, as AWS names them."""
