"""Zero-cost proxies: one module each, higher = better.

``compute_proxies(model, batch, names=...)`` scores a model with many proxies at once;
``PROXIES`` maps every name to its ``score`` function. ``DATA_FREE`` proxies need only the
input shape, ``DATA_DEPENDENT`` ones a batch ``(x, y)``, ``ADVERSARIAL`` ones (``*_adv``) also
an ``eps`` (a fraction of 1).
"""

from robnas.search.proxies._registry import (
    ADVERSARIAL,
    DATA_DEPENDENT,
    DATA_FREE,
    PROXIES,
    compute_proxies,
)

__all__ = ["ADVERSARIAL", "DATA_DEPENDENT", "DATA_FREE", "PROXIES", "compute_proxies"]
