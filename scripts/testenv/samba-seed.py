#!/usr/bin/python3
# Seed the private Samba AD DC of scripts/testenv/samba.sh with dirgate's deterministic test data.
#
#   /usr/bin/python3 scripts/testenv/samba-seed.py -s $AD_DIR/etc/smb.conf --out $AD_DIR/seed.tsv [options]
#
# Runs with Debian's /usr/bin/python3 only: Samba's python bindings (python3-samba) are not importable from a
# pyenv/venv python. It opens the instance's local sam.ldb with system privileges (what samba-tool does on a
# DC) before `samba` is started -- about 10x faster than a samba-tool process per object. Objects are committed
# in transactions of --batch. Password hashing costs ~20 ms per account, so only the accounts that tests bind
# as get a password; every other user is enabled with userAccountControl NORMAL|PASSWD_NOTREQD and no password
# (a simple bind with any password gives 52e).
#
# Domain policy (domain head attributes, like `samba-tool domain passwordsettings set`): minimum password age 0,
# complexity/length/history/maximum age left at Samba's defaults, lockout threshold --lockout-threshold
# (0 = never lock), lockout duration and observation window --lockout-minutes.
#
# Content (B = domain DN, P = OU=People,B; every user has sAMAccountName, userPrincipalName <sam>@<realm>,
# mail <sam>@<realm>, givenName/sn/displayName, employeeID, proxyAddresses SMTP:<sam>@<realm> and
# smtp:alias.<sam>@<realm>, RFC 2307 uid/uidNumber/gidNumber/loginShell/unixHomeDirectory):
#   OU=People,B  OU=Groups,B  OU=Service Accounts,B  OU=Big,P  and OU="Docs/KB+Ops, EU",P
#   CN=Test User NNNNN,P   user00001..--users; every 10th also smtp:userNNNNN@other.test; every 50th disabled
#                          (514); password only on users 1..--pw-users
#   CN=Big Member NNNNN,OU=Big,P   bigNNNNN, no password: only when --users < --big, to give G-Big --big members
#   special users (all with the user password):
#     mustchange  CN=Must Change,P        pwdLastSet 0            -> bind: 49 "data 773"
#     expired     CN=Expired User,P       accountExpires 2012     -> bind: 49 "data 701"
#     disabled    CN=Disabled User,P      userAccountControl 514  -> bind: 49 "data 533"
#     lockme      CN=Lock Me,P            for lockout tests       -> after threshold bad binds: "data 775"
#     jdoe        CN=Doe\, John,P
#     rdsales     CN=R&D/Ops \+ Sales,P
#     hashuser    CN=\#Hash \"Q\" \<x\>\;a\=b\\,P      (leading '#', quotes, <>, ';', '=', trailing '\')
#     jmueller    CN=Jürgen Müller,P
#     kbuser      CN=KB User,OU=Docs/KB+Ops\, EU,P
#     shared1 shared2  CN=Shared One|Shared Two,P    both carry smtp:shared@<realm> (ambiguous alias)
#   service accounts (OU=Service Accounts, password never expires):
#     svc-sync       --sync-pw        "Replicating Directory Changes" is granted by samba.sh (samba-tool dsacl)
#     svc-nodirsync  --nodirsync-pw   no extra right: DirSync is refused (50), uSNChanged polling works
#   groups (OU=Groups; global security unless noted; sAMAccountName = CN unless noted):
#     G-Leaf {user00001, Doe John}   G-Mid {G-Leaf, user00002}   G-Top {G-Mid}
#     G-CycleA {user00003, G-CycleB}  G-CycleB {user00004, G-CycleA}      (membership cycle)
#     G-Big   --big members (Test Users first, then Big Members): AD range retrieval member;range=0-1499
#     CN=Sales\, EMEA  (sAMAccountName Sales-EMEA) {user00002, R&D, Jürgen, KB User}
#     G-Dist  universal distribution group, mail g-dist@<realm>, proxyAddresses, members user00001..00010 + #Hash
# Writes --out: one "KEY<TAB>VALUE" line per DN/UPN/count samba.sh puts into its env file.
import argparse
import sys
import time

import ldb
from samba import param
from samba.auth import system_session
from samba.dsdb import UF_ACCOUNTDISABLE, UF_DONT_EXPIRE_PASSWD, UF_NORMAL_ACCOUNT, UF_PASSWD_NOTREQD
from samba.samdb import SamDB

GT_GLOBAL_SECURITY = -2147483646  # 0x80000002
GT_UNIVERSAL_DIST = 8
TICKS_PER_MINUTE = 60 * 10**7  # AD intervals are in 100 ns units, stored negative

ap = argparse.ArgumentParser(description="seed the Samba AD DC of scripts/testenv/samba.sh")
ap.add_argument("-s", "--configfile", required=True, help="the instance's smb.conf")
ap.add_argument("--out", required=True, help="file for the KEY<TAB>VALUE summary")
ap.add_argument("--users", type=int, default=300)
ap.add_argument("--big", type=int, default=1600)
ap.add_argument("--pw-users", type=int, default=20, help="Test Users 1..N get the user password")
ap.add_argument("--password", required=True, help="password of the test users")
ap.add_argument("--sync-pw", required=True)
ap.add_argument("--nodirsync-pw", required=True)
ap.add_argument("--lockout-threshold", type=int, default=5)
ap.add_argument("--lockout-minutes", type=int, default=1)
ap.add_argument("--batch", type=int, default=500)
a = ap.parse_args()

lp = param.LoadParm()
lp.load(a.configfile)
samdb = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
base = str(samdb.domain_dn())
realm = lp.get("realm").lower()
t0 = time.time()
summary = []  # (key, value)
pending = 0


def note(k, v):
    summary.append((k, str(v)))


def child(parent, attr, value):
    """DN attr=value,parent with value escaped by ldb (',', '+', '#', '"', '<', '>', ';', '=', '\\')."""
    dn = ldb.Dn(samdb, parent)
    dn.add_child(ldb.Dn(samdb, "%s=x" % attr))
    dn.set_component(0, attr, value)
    return str(dn)


def add(msg):
    global pending
    samdb.add(msg)
    pending += 1
    if pending % a.batch == 0:
        samdb.transaction_commit()
        samdb.transaction_start()


def utf16pw(p):
    return ('"%s"' % p).encode("utf-16-le")


samdb.transaction_start()

# --- domain password / lockout policy ---------------------------------------------------------------------
m = ldb.Message(ldb.Dn(samdb, base))
m["minPwdAge"] = ldb.MessageElement("0", ldb.FLAG_MOD_REPLACE, "minPwdAge")
m["lockoutThreshold"] = ldb.MessageElement(str(a.lockout_threshold), ldb.FLAG_MOD_REPLACE, "lockoutThreshold")
win = str(-a.lockout_minutes * TICKS_PER_MINUTE)
m["lockoutDuration"] = ldb.MessageElement(win, ldb.FLAG_MOD_REPLACE, "lockoutDuration")
m["lockOutObservationWindow"] = ldb.MessageElement(win, ldb.FLAG_MOD_REPLACE, "lockOutObservationWindow")
samdb.modify(m)

# --- OUs ----------------------------------------------------------------------------------------------------
people = child(base, "OU", "People")
groups_ou = child(base, "OU", "Groups")
svc_ou = child(base, "OU", "Service Accounts")
big_ou = child(people, "OU", "Big")
special_ou = child(people, "OU", "Docs/KB+Ops, EU")
for dn in (people, groups_ou, svc_ou, big_ou, special_ou):
    add({"dn": dn, "objectClass": "organizationalUnit"})
note("PEOPLE_DN", people)
note("GROUPS_DN", groups_ou)
note("SERVICE_OU_DN", svc_ou)
note("SPECIAL_OU_DN", special_ou)

uid_number = [20000]


def user(parent, cn, sam, password=None, uac=UF_NORMAL_ACCOUNT, given="Test", sn=None, proxies=None, extra=None):
    uid_number[0] += 1
    if password is None:
        uac |= UF_PASSWD_NOTREQD
    addr = "%s@%s" % (sam, realm)
    msg = {
        "dn": child(parent, "CN", cn),
        "objectClass": "user",
        "sAMAccountName": sam,
        "userPrincipalName": addr,
        "givenName": given,
        "sn": sn or sam,
        "displayName": cn,
        "mail": addr,
        "proxyAddresses": ["SMTP:" + addr, "smtp:alias." + addr] + (proxies or []),
        "employeeID": str(uid_number[0]),
        "userAccountControl": str(uac),
        "uid": sam,
        "uidNumber": str(uid_number[0]),
        "gidNumber": "10000",
        "loginShell": "/bin/bash",
        "unixHomeDirectory": "/home/" + sam,
    }
    if password is not None:
        msg["unicodePwd"] = utf16pw(password)
    if extra:
        msg.update(extra)
    add(msg)
    return msg["dn"]


# --- Test Users ---------------------------------------------------------------------------------------------
users = []
n_pw = 0
for i in range(1, a.users + 1):
    sam = "user%05d" % i
    pw = a.password if i <= a.pw_users else None
    n_pw += pw is not None
    users.append(user(people, "Test User %05d" % i, sam, pw,
                      UF_NORMAL_ACCOUNT | (UF_ACCOUNTDISABLE if i % 50 == 0 else 0),
                      sn="User%05d" % i, proxies=["smtp:%s@other.test" % sam] if i % 10 == 0 else None))
t_users = time.time() - t0

# --- Big Members (only as many as G-Big needs beyond the Test Users) ----------------------------------------
t1 = time.time()
big_extra = max(0, a.big - len(users))
big_members = [user(big_ou, "Big Member %05d" % i, "big%05d" % i, sn="Member%05d" % i, given="Big")
               for i in range(1, big_extra + 1)]
t_big = time.time() - t1

# --- special users ------------------------------------------------------------------------------------------
t1 = time.time()
P = a.password
sp = {}
sp["mustchange"] = user(people, "Must Change", "mustchange", P, extra={"pwdLastSet": "0"})
sp["expired"] = user(people, "Expired User", "expired", P, extra={"accountExpires": "130000000000000000"})
sp["disabled"] = user(people, "Disabled User", "disabled", P, UF_NORMAL_ACCOUNT | UF_ACCOUNTDISABLE)
sp["lockme"] = user(people, "Lock Me", "lockme", P)
sp["jdoe"] = user(people, "Doe, John", "jdoe", P, given="John", sn="Doe")
sp["rdsales"] = user(people, "R&D/Ops + Sales", "rdsales", P)
sp["hashuser"] = user(people, '#Hash "Q" <x>;a=b\\', "hashuser", P)
sp["jmueller"] = user(people, "Jürgen Müller", "jmueller", P, given="Jürgen", sn="Müller")
sp["kbuser"] = user(special_ou, "KB User", "kbuser", P)
shared = "smtp:shared@" + realm
sp["shared1"] = user(people, "Shared One", "shared1", P, proxies=[shared])
sp["shared2"] = user(people, "Shared Two", "shared2", P, proxies=[shared])
for k, dn in sp.items():
    note(k.upper() + "_DN", dn)
    note(k.upper() + "_UPN", "%s@%s" % (k, realm))
note("SHARED_ALIAS", "shared@" + realm)

svc = UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD
sync_dn = user(svc_ou, "svc-sync", "svc-sync", a.sync_pw, svc, given="Sync", sn="Service")
nodirsync_dn = user(svc_ou, "svc-nodirsync", "svc-nodirsync", a.nodirsync_pw, svc, given="NoDirSync", sn="Service")
note("SYNC_DN", sync_dn)
note("SYNC_UPN", "svc-sync@" + realm)
note("NODIRSYNC_DN", nodirsync_dn)
note("NODIRSYNC_UPN", "svc-nodirsync@" + realm)
t_special = time.time() - t1


# --- groups -------------------------------------------------------------------------------------------------
def group(cn, members, sam=None, gtype=GT_GLOBAL_SECURITY, extra=None):
    msg = {"dn": child(groups_ou, "CN", cn), "objectClass": "group",
           "sAMAccountName": sam or cn, "groupType": str(gtype)}
    if members:
        msg["member"] = members
    if extra:
        msg.update(extra)
    add(msg)
    return msg["dn"]


t1 = time.time()
leaf = group("G-Leaf", [users[0], sp["jdoe"]])
mid = group("G-Mid", [leaf, users[1]])
top = group("G-Top", [mid])
cyc_a = group("G-CycleA", [users[2]])
cyc_b = group("G-CycleB", [users[3], cyc_a])
samdb.modify(ldb.Message.from_dict(samdb, {"dn": cyc_a, "member": [cyc_b]}, ldb.FLAG_MOD_ADD))
big_dn = group("G-Big", (users + big_members)[:a.big])
sales = group("Sales, EMEA", [users[1], sp["rdsales"], sp["jmueller"], sp["kbuser"]], sam="Sales-EMEA")
dist = group("G-Dist", users[:10] + [sp["hashuser"]], gtype=GT_UNIVERSAL_DIST,
             extra={"mail": "g-dist@" + realm,
                    "proxyAddresses": ["SMTP:g-dist@" + realm, "smtp:all-staff@" + realm]})
samdb.transaction_commit()
t_groups = time.time() - t1

for k, v in (("G_TOP_DN", top), ("G_MID_DN", mid), ("G_LEAF_DN", leaf), ("G_CYCLE_A_DN", cyc_a),
             ("G_CYCLE_B_DN", cyc_b), ("G_BIG_DN", big_dn), ("G_SALES_DN", sales), ("G_DIST_DN", dist)):
    note(k, v)
note("G_DIST_MAIL", "g-dist@" + realm)
note("BIG_EXTRA", big_extra)
note("BIG_MEMBERS", min(a.big, len(users) + big_extra))
# user objects created under OU=People (Test Users + Big Members + special users)
note("PEOPLE_USERS", len(users) + big_extra + len(sp))
with open(a.out, "w", encoding="utf-8") as f:
    for k, v in summary:
        if "\t" in v or "\n" in v:
            sys.exit("value of %s contains a tab/newline" % k)
        f.write("%s\t%s\n" % (k, v))
print("[samba-seed] %d Test Users (%d with password) %.2fs, %d Big Members %.2fs, %d special + 2 service "
      "accounts %.2fs, 8 groups %.2fs, total %.2fs"
      % (len(users), n_pw, t_users, big_extra, t_big, len(sp), t_special, t_groups, time.time() - t0),
      file=sys.stderr)
