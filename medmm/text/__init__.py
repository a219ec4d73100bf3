"""Report text: finding mentions and their ConText status.

* :func:`extract_mentions` -- report -> mentions (ontology concept, site, size, negation...);
* :func:`assess` -- ConText-style negation / uncertainty / history of one mention.

The text encoder and report/image alignment (issue 7) build on these.
"""

from medmm.text.context import ContextResult, assess
from medmm.text.mentions import ReportMention, extract_mentions, split_sentences

__all__ = ["ContextResult", "ReportMention", "assess", "extract_mentions", "split_sentences"]
