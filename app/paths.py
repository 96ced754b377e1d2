"""Route paths, defined once: the routers, the guard middleware, metrics, the request log and
the tests all name a route through these."""

from __future__ import annotations

PARSE = "/v1/parse"
PARSE_BATCH = "/v1/parse/batch"
RASA_PARSE = "/model/parse"
MODELS = "/v1/models"
LIVEZ = "/livez"
READYZ = "/readyz"
METRICS = "/metrics"
FEEDBACK = "/v1/feedback"
ADMIN = "/v1/admin"
CONSOLE = "/console"  # the operator console's pages (app/operating/console)

# Neither limited nor counted by the guard middleware.
HEALTH_ROUTES = frozenset({LIVEZ, READYZ, METRICS})
# Every request to these gets a request-log row, failed ones included.
LOGGED_ROUTES = frozenset({PARSE, PARSE_BATCH, RASA_PARSE})
# Routes whose log row holds exactly one utterance (what feedback can correct).
SINGLE_TEXT_ROUTES = frozenset({PARSE, RASA_PARSE})
