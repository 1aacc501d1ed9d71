"""Fleet operations: inventory (status), dry run (plan), spread schedules,
and the quota-paced mass re-key.

Every set's manifest secret carries the tag ``certrotor:rotator`` = the
rotator's id (the config's ``service_name``, "certrotor" by default); fleet
tools find a rotator's sets with ListSecrets filtered on that tag.
"""

from __future__ import annotations

ROTATOR_TAG = "certrotor:rotator"
DEFAULT_ROTATOR_ID = "certrotor"
