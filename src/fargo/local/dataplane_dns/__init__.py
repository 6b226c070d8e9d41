"""The data plane's DNS, in a process of its own that outlives the control plane.

Caddy looks each target group's targets up by DNS (`fargo.local.caddy.target_dns`) and
tasks find each other through Cloud Map's DNS (`fargo.local.cloudmap.dns_server`). Both
servers run in small processes of their own session (`process`), answering from the
last snapshot the control plane wrote (`snapshot`): a control plane that is killed
(SIGKILL) or stopped (SIGSTOP, Ctrl-Z) leaves the load balancers routing to the last
known targets and discovery names resolving to the last known records.

    lookups = TargetLookupServer(state_dir, "caddy")         # targets (`targets`)
    discovery = DiscoveryDnsServer(cloud_map, state_dir, "127.0.0.1", 0)  # (`discovery`)
"""
