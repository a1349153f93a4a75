#!/usr/bin/python3
# Grant accounts "List Contents" and "Read Property" on CN=Deleted Objects, so they can see tombstones
# (objectGUID, isDeleted) with the Show Deleted control (1.2.840.113556.1.4.417): the documented way to
# let a sync account detect deletions without domain admin rights (on Windows:
# dsacls "CN=Deleted Objects,DC=..." /takeownership, then /G DOMAIN\account:LCRP).
# samba-tool dsacl cannot address the container (it needs the show_deleted control), hence this script.
#
#   /usr/bin/python3 samba-deleted-acl.py SMB_CONF BASE_DN ACCOUNT_DN [ACCOUNT_DN...]
import sys

import ldb
from samba.auth import system_session
from samba.dcerpc import security
from samba.ndr import ndr_pack, ndr_unpack
from samba.param import LoadParm
from samba.samdb import SamDB

conf, base, accounts = sys.argv[1], sys.argv[2], sys.argv[3:]
lp = LoadParm()
lp.load(conf)
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
dn = "CN=Deleted Objects," + base
controls = ["show_deleted:1", "sd_flags:1:4"]  # 4 = DACL only
res = db.search(base=dn, scope=ldb.SCOPE_BASE, attrs=["nTSecurityDescriptor"], controls=controls)
sd = ndr_unpack(security.descriptor, res[0]["nTSecurityDescriptor"][0])
for account in accounts:
    r = db.search(base=account, scope=ldb.SCOPE_BASE, attrs=["objectSid"])
    sid = str(ndr_unpack(security.dom_sid, r[0]["objectSid"][0]))
    ace = security.descriptor.from_sddl("D:(A;;LCRP;;;%s)" % sid, security.dom_sid(sid)).dacl.aces[0]
    sd.dacl_add(ace)
    print("granted LCRP on %s to %s (%s)" % (dn, account, sid))
m = ldb.Message()
m.dn = ldb.Dn(db, dn)
m["nTSecurityDescriptor"] = ldb.MessageElement(ndr_pack(sd), ldb.FLAG_MOD_REPLACE, "nTSecurityDescriptor")
db.modify(m, controls=controls)
