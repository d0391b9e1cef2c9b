"""Stage 4, evaluation: signatures (:mod:`.signatures`), heads (:mod:`.heads`), learned
retrieval keys (:mod:`.keys`), the one evaluation path (:mod:`.retrieval`) and the bounded
representation store (:mod:`.store`). Importing the package registers the heads and rules."""

from . import background as _background  # noqa: F401
from . import heads as _heads  # noqa: F401
from . import keys as _keys  # noqa: F401
