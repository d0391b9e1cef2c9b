"""Method hooks of the baselines that are not module families: continual classifier heads
(:mod:`cft.baselines.heads`, ``HEADS``) and learned retrieval rules
(:mod:`cft.baselines.keys`, ``RULES``). Importing the package registers them."""

from cft.baselines import heads as _heads  # noqa: F401
from cft.baselines import keys as _keys  # noqa: F401
