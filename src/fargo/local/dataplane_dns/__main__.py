"""``python -m fargo.local.dataplane_dns``: see `fargo.local.dataplane_dns.serve`."""

import sys

from fargo.local.dataplane_dns.serve import main

sys.exit(main())
