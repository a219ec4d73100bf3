"""Report text: ConText-style negation / uncertainty / history (:mod:`medmm.text.context`).

The encoder, mention extraction and report/image alignment (issue 7) build on this.
"""

from medmm.text.context import ContextResult, assess

__all__ = ["ContextResult", "assess"]
