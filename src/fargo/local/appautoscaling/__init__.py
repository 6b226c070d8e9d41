"""Application Auto Scaling for the twin's ECS services: target tracking on their real CPU
and memory, as AWS evaluates it.

`policy` decides from a metric's datapoints (3 above the target: out; 15 below 90 % of
it: in; cooldowns), `metrics` measures the services as CloudWatch's ECS metrics do
(CPUUtilization, MemoryUtilization: what the tasks use over what they reserve), and
`scaler` is the part that does both every period of the twin's clock and sets the
services' desired counts.
"""
