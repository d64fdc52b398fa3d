"""Row-level security of the operational database: the names the API and the policies share.

The policies themselves are created by migration 0002 (frozen there, as migrations must be); this
module holds what code needs at run time. How it works:

* `API_ROLE` owns nothing and holds only SELECT / INSERT / UPDATE grants (no DELETE: the API
  soft-deletes). Owners and superusers bypass row-level security, so the API switches to this
  role at the start of every transaction (`api.db.scoped_session`); ingestion and migrations run
  as the owner and see every tenant, as they must.
* Each tenant table's policy admits a row when its `provider_id` is one of the transaction's
  `mitra.tenant_ids` (comma-separated UUIDs) or when `mitra.all_tenants` is `on` (super admins).
  Unset settings admit nothing, so a query that forgets its tenant filter returns no foreign rows
  and a write into another tenant fails its WITH CHECK.
"""

from __future__ import annotations

API_ROLE = "mitra_api"
TENANT_IDS_SETTING = "mitra.tenant_ids"
ALL_TENANTS_SETTING = "mitra.all_tenants"
USER_ID_SETTING = "mitra.user_id"
