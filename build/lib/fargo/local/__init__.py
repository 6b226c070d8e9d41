"""The local twin: the reference architecture on one machine, no AWS account, no Docker."""
