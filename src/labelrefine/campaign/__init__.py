

#: ``campaign step`` strategies (:mod:`labelrefine.campaign.step`): the paper's method, or with
#: ``ours_plus``' pool and per-round selection. Here so the CLI can list them without torch.
STRATEGIES = ("paper", "plus")
