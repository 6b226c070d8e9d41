"""The twin's task logs, as the awslogs driver and CloudWatch Logs keep them on AWS.

Each task's stdout and stderr go into a pipe whose reader is the log router
(`fargo.local.logs.router`), a process of its own, as FireLens is a container of its
own: it stamps each line with the time it arrived and appends it to the task's log
stream, ``logs/<service>/<task id>.log``, rotated by size. The router outlives the
control plane, so a crashed control plane loses no line.

`fargo.local.logs.lines` is the format of a stored line, `fargo.local.logs.streams`
reads the streams (merged in time order, tail, since, follow), and
`fargo.local.logs.runs` moves the previous runs' logs aside when a twin starts.
"""
