"""Route groups; each module builds an ``APIRouter`` bound to one app's ``ServeState``."""
