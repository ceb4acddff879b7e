"""The campaign ledger: one SQLite file holding everything a relabeling campaign knows.

Tables (schema version :data:`SCHEMA_VERSION`; files of older versions are upgraded in place
when opened):

- ``meta``: key/value settings (schema version, image root, creation time, campaign settings such
  as ``double_read_share`` and ``blind``).
- ``classes``: class index -> name.
- ``items``: one row per image: ``idx`` (dense 0-based index), ``key`` (the image id),
  ``path`` (relative to the image root), ``role`` (``train`` items can be queued; ``val`` and
  ``test`` are held out for model selection / evaluation), ``given_label``, ``sha256`` (content
  hash of the image file, checked by :meth:`Ledger.relocate`), and the derived ``current_label``
  / ``source`` columns, kept in step with the final decision inside the same transaction.
- ``readers``: reader accounts (name, role ``reader`` or ``adjudicator``, SHA-256 of the token).
- ``rounds``: one row per finished ``campaign step`` (model metrics, sampler, budget, settings,
  the calibration ``temperature`` and the model's expected wrong labels in the pool and the
  queue, ``model_estimate``; both NULL in rounds written before schema version 3).
- ``scores``: per round and item, the model's class probabilities, whether the item was in the
  trusted (clean) set, and the sampler score of pool items.
- ``queue``: per round, the ranked items sent to the experts, each with a human-readable reason.
- ``checkpoints``: the model weights written by each round (so the next round fine-tunes them).
- ``annotations``: append-only. One row per reader answer (``label`` or ``unsure``) or
  retraction (``undo``, pointing at the answer it retracts). ``submission_id`` is UNIQUE, so a
  retried submission is recognised and never stored twice; it belongs to the reader who sent it
  (the same id from another reader is a :class:`SubmissionIdTaken`); ``external_id`` names the
  answer in another tool (e.g. a Label Studio annotation id); ``note`` is the reader's
  free-text note on the answer (at most :data:`NOTE_MAX_CHARS` characters; empty when none,
  and in answers written before schema version 5).
- ``void_undos``: append-only. Undo requests that found nothing to undo, so that a retry of one
  stays a no-op instead of retracting an answer given in between.
- ``adjudications``: append-only. An adjudicator's decision on an item whose readers disagree,
  with the live answers it ``resolves``.
- ``leases``: which reader was last handed which item (:meth:`Ledger.assign_next`), one row per
  reader, each with an expiry time.
- ``events``: append-only log of everything that happened (triggers forbid UPDATE and DELETE).

Two views hold the rules every reader of the file uses:

- ``live_answers``: each reader's latest non-retracted answer per item (readers never overwrite
  each other: two readers' answers on one item are both live).
- ``decisions``: one row per answered item with its ``status`` -- ``single`` (one reader gave a
  label), ``agreed`` (several readers gave the same label), ``conflict`` (readers' labels
  differ and nobody adjudicated yet), ``adjudicated`` (an adjudicator decided) or ``unsure``
  (only "unsure" answers) -- and the final ``label`` (NULL for conflicts and unsure items).
  "Unsure" answers never conflict with a label. An adjudication holds while every answer it
  resolved is live; once one is retracted or replaced the item is ``reopened``: a conflict
  again, unless the live answers now agree with the adjudicated label.

Identities: reader names cannot be :data:`RESERVED_NAMES` or a name the admin token answers as
(:meth:`Ledger.claim_admin_name`), so every name in the file stands for one person.

Every write is one short ``BEGIN IMMEDIATE`` transaction (one connection per thread; WAL mode,
``synchronous=FULL``, foreign keys on, a busy timeout), so a crash of the writing process -- or of
the machine -- loses nothing that was acknowledged, and concurrent writers serialise cleanly. Copy
a campaign that may be in use with :meth:`Ledger.backup` (``labelrefine campaign backup``), never
with a plain file copy: answers may still sit in the ``-wal`` file next to it.

The package holds one concern per module, all behind the one :class:`Ledger` class:

- :mod:`.schema`: the DDL and the migrations (the bottom: imports nothing of the ledger);
- :mod:`.records`: the errors and the records the ledger takes and returns;
- :mod:`.checks`: checks of caller-supplied values; :mod:`.sql`: statements shared by the parts;
- :mod:`.core`: creating, opening and upgrading the file, connections, settings, classes;
- :mod:`.identities`: reader accounts and tokens; :mod:`.items`: items, rounds, scores, queues;
- :mod:`.assignment`: who reads what next (reading slots, leases);
- :mod:`.answers`: answers, undo, imports, decisions; :mod:`.adjudication`: conflicts and
  adjudicators' decisions; :mod:`.files`: backup, relocation and the event log.
"""

from __future__ import annotations

from labelrefine.campaign.ledger.adjudication import Adjudication
from labelrefine.campaign.ledger.answers import Answers
from labelrefine.campaign.ledger.assignment import Assignment
from labelrefine.campaign.ledger.core import LedgerCore
from labelrefine.campaign.ledger.files import Files, file_sha256
from labelrefine.campaign.ledger.identities import Identities, token_hash
from labelrefine.campaign.ledger.items import Items
from labelrefine.campaign.ledger.records import (
    AdjudicationResult,
    CampaignError,
    ImportResult,
    ItemRecord,
    NotAllowed,
    QueueEntry,
    Reader,
    SubmissionIdTaken,
    SubmissionRetracted,
    SubmitResult,
    UndoResult,
)
from labelrefine.campaign.ledger.schema import (
    ANSWER_KINDS,
    APPLICATION_ID,
    DECISION_STATUSES,
    MIGRATIONS,
    NOTE_MAX_CHARS,
    READER_ROLES,
    RESERVED_NAMES,
    ROLES,
    SCHEMA_V1,
    SCHEMA_VERSION,
)
from labelrefine.campaign.ledger.sql import round_prob, utc_now
from labelrefine.validation import UNSURE  # the answer's name; never a class name

_SCHEMA_V1 = SCHEMA_V1  # the names these had before the ledger was a package
_MIGRATIONS = MIGRATIONS


class Ledger(Files, Adjudication, Answers, Assignment, Items, Identities, LedgerCore):
    """Read and write one campaign file.

    Safe to share between threads: each thread uses its own connection, SQLite serialises the
    writers (``BEGIN IMMEDIATE`` with a busy timeout), and each method runs in its own
    transaction.
    """


__all__ = [
    "ANSWER_KINDS",
    "APPLICATION_ID",
    "DECISION_STATUSES",
    "MIGRATIONS",
    "NOTE_MAX_CHARS",
    "READER_ROLES",
    "RESERVED_NAMES",
    "ROLES",
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "UNSURE",
    "AdjudicationResult",
    "CampaignError",
    "ImportResult",
    "ItemRecord",
    "Ledger",
    "NotAllowed",
    "QueueEntry",
    "Reader",
    "SubmissionIdTaken",
    "SubmissionRetracted",
    "SubmitResult",
    "UndoResult",
    "file_sha256",
    "round_prob",
    "token_hash",
    "utc_now",
]
