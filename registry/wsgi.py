"""The WSGI application the production server (Granian) imports in each worker.

Once Django is set up, the URL configuration is loaded (else the first request of every
worker pays for importing every view) and everything alive at that point is moved out of
the garbage collector's reach with `gc.freeze()`: those objects live as long as the
process, and a full collection no longer walks them. Measured on the transfer path:
benchmarks/README.md, "Transfer statements, prepared".
"""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 - imports the views now, not on a first request
gc.collect()
gc.freeze()
