

#: ``campaign step`` strategies (:mod:`labelrefine.campaign.step`): ``find`` (the default: queue
#: from every unanswered training item by out-of-sample label quality, with a random audit
#: share), the paper's method, or the paper's with ``ours_plus``' pool and per-round selection.
#: Here so the CLI can list them without torch.
STRATEGIES = ("find", "paper", "plus")
#: The strategy of a new campaign.
DEFAULT_STRATEGY = "find"
