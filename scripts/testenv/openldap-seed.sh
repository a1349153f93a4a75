#!/usr/bin/env bash
# Deterministic LDIF seed for the private OpenLDAP test upstream (loaded with slapadd by openldap.sh).
#
#   scripts/testenv/openldap-seed.sh USERS GROUPS > seed.ldif
#
# Env: BASE_DN     (default dc=example,dc=test; must be a single dc=... component + parents)
#      USER_PW     password of every user entry           (default Passw0rd!)
#      SYNC_PW     password of cn=sync,ou=services        (default SyncPassw0rd!)
#      READER_PW   password of cn=reader,ou=services      (default ReaderPassw0rd!)
#
# Content (B = BASE_DN, N = USERS, G = GROUPS; 5-digit user / 4-digit group numbers, 1-based):
#   B                              dcObject+organization, o: Example Test
#   ou=people,B ou=groups,B ou=services,B ou=policies,B
#   cn=default,ou=policies,B       ppolicy default policy: pwdLockout TRUE, pwdMaxFailure 5,
#                                  pwdLockoutDuration 0 (locked until an admin clears pwdAccountLockedTime)
#   cn=sync,ou=services,B          sync service account (SYNC_PW); slapd gives it unlimited size limit
#   cn=reader,ou=services,B        ordinary read-only account (READER_PW); size limit 500 like users
#   uid=userNNNNN,ou=people,B      N inetOrgPerson users, n = 1..N:
#       cn "Test User NNNNN", sn "UserNNNNN", givenName "Test", displayName "Test User NNNNN",
#       employeeNumber n, mail userNNNNN@example.test,
#       n % 10 == 0: extra mail alias.userNNNNN@example.test
#       n %  7 == 0: extra mail userNNNNN@other.test
#       n % 50 == 0: pwdAccountLockedTime 000001010000Z (permanently locked: bind fails with 49)
#   "hard DN" users (inetOrgPerson, never locked), RDN as stored in the LDIF:
#       cn=Doe\, John,ou=people,B                                uid jdoe      mail john.doe@example.test
#       cn=R&D/Ops \+ Sales,ou=people,B                          uid rdops     mail rd.ops@example.test
#       cn=\#hash \"quoted\" \<x\> \; a\=b\\,ou=people,B         uid weird     mail weird@example.test
#           (cn value: #hash "quoted" <x> ; a=b\ )
#       cn=Jürgen Müller,ou=people,B   (UTF-8)                   uid jmueller  mail juergen.mueller@example.test
#       cn=Kim Lee,ou=Docs/KB\+Ops\, EU,ou=people,B              uid kimlee    mail kim.lee@example.test
#           (in the organizationalUnit "Docs/KB+Ops, EU" under ou=people)
#   Every user (generated and hard DN) has userPassword = {SSHA} of USER_PW (hashed once per run, so the
#   salt -- and only that -- differs between runs).
#   cn=groupGGGG,ou=groups,B       G groupOfNames, round robin: user n is in group ((n-1) % G) + 1
#                                  (only min(G, N) groups are created: groupOfNames needs a member)
#   cn=all-users,ou=groups,B       every user, generated and hard DN (N + 5 members)
#   cn=nested-leaf,ou=groups,B     user00001, cn=Doe\, John
#   cn=nested-mid,ou=groups,B      cn=nested-leaf, user00002
#   cn=nested-top,ou=groups,B      cn=nested-mid          (so user00001 / Doe, John are in all three)
#   cn=Sales\, EMEA \+ APAC,ou=groups,B   R&D/Ops + Sales, #hash..., Jürgen Müller, Kim Lee, user00003
#   (member values naming user00002/user00003 are left out when N is smaller.)
# Every entry carries a fixed entryUUID (version-8 style "KKKKKKKK-0000-8000-8000-NNNNNNNNNNNN", K = kind:
# 1 structure/services, 2 generated users, 3 hard-DN users, 4 generated groups, 5 fixed groups), so two
# instances seeded from this script (failover tests) and repeated runs agree on entryUUIDs.
# Counts: inetOrgPerson = N + 5; groupOfNames = min(G, N) + 5; entries = N + min(G,N) + 19.
set -euo pipefail

usage() { echo "usage: $0 USERS GROUPS" >&2; exit 2; }
[[ $# -eq 2 && $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] || usage
USERS=$1
NGROUPS=$2
BASE_DN=${BASE_DN:-dc=example,dc=test}
USER_PW=${USER_PW:-Passw0rd!}
SYNC_PW=${SYNC_PW:-SyncPassw0rd!}
READER_PW=${READER_PW:-ReaderPassw0rd!}
command -v slappasswd >/dev/null || { echo "$0: slappasswd missing (run scripts/testenv/install.sh)" >&2; exit 1; }

# hash once per run: slappasswd per user would dominate the seed time
USER_HASH=$(slappasswd -h '{SSHA}' -s "$USER_PW")
SYNC_HASH=$(slappasswd -h '{SSHA}' -s "$SYNC_PW")
READER_HASH=$(slappasswd -h '{SSHA}' -s "$READER_PW")

LC_ALL=C awk -v nusers="$USERS" -v ngroups="$NGROUPS" -v base="$BASE_DN" \
    -v upw="$USER_HASH" -v spw="$SYNC_HASH" -v rpw="$READER_HASH" '
function uuid(kind, n) { return sprintf("%08x-0000-8000-8000-%012x", kind, n) }
function entry(dn, kind, n) { printf "dn: %s\nentryUUID: %s\n", dn, uuid(kind, n) }
function udn(n) { return sprintf("uid=user%05d,ou=people,%s", n, base) }
function hard_user(n, rdn, cn, sn, uid, mail, parent) {
  hard_dn[n] = rdn "," parent
  entry(hard_dn[n], 3, n)
  printf "objectClass: inetOrgPerson\ncn: %s\nsn: %s\ndisplayName: %s\nuid: %s\nmail: %s@example.test\nuserPassword: %s\n\n", \
    cn, sn, cn, uid, mail, upw
}
BEGIN {
  split(base, rdn0, /[=,]/)
  entry(base, 1, 1)
  printf "objectClass: dcObject\nobjectClass: organization\ndc: %s\no: Example Test\n\n", rdn0[2]
  nous = split("people groups services policies", ous, " ")
  for (i = 1; i <= nous; i++) {
    entry("ou=" ous[i] "," base, 1, 1 + i)
    printf "objectClass: organizationalUnit\nou: %s\n\n", ous[i]
  }
  entry("cn=default,ou=policies," base, 1, 10)
  printf "objectClass: device\nobjectClass: pwdPolicy\ncn: default\npwdAttribute: userPassword\n"
  printf "pwdLockout: TRUE\npwdMaxFailure: 5\npwdLockoutDuration: 0\ndescription: default password policy\n\n"
  entry("cn=sync,ou=services," base, 1, 20)
  printf "objectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: sync\nuserPassword: %s\n", spw
  printf "description: dirgate sync service account (unlimited size limit)\n\n"
  entry("cn=reader,ou=services," base, 1, 21)
  printf "objectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: %s\n", rpw
  printf "description: ordinary read-only account (size limit 500)\n\n"

  for (n = 1; n <= nusers; n++) {
    entry(udn(n), 2, n)
    printf "objectClass: inetOrgPerson\nuid: user%05d\ncn: Test User %05d\nsn: User%05d\ngivenName: Test\n", n, n, n
    printf "displayName: Test User %05d\nemployeeNumber: %d\nmail: user%05d@example.test\n", n, n, n
    if (n % 10 == 0) printf "mail: alias.user%05d@example.test\n", n
    if (n % 7 == 0) printf "mail: user%05d@other.test\n", n
    printf "userPassword: %s\n", upw
    if (n % 50 == 0) printf "pwdAccountLockedTime: 000001010000Z\n"
    printf "\n"
  }

  people = "ou=people," base
  hard_user(1, "cn=Doe\\, John", "Doe, John", "Doe", "jdoe", "john.doe", people)
  hard_user(2, "cn=R&D/Ops \\+ Sales", "R&D/Ops + Sales", "Ops", "rdops", "rd.ops", people)
  hard_user(3, "cn=\\#hash \\\"quoted\\\" \\<x\\> \\; a\\=b\\\\", "#hash \"quoted\" <x> ; a=b\\", "Weird", "weird", "weird", people)
  hard_user(4, "cn=Jürgen Müller", "Jürgen Müller", "Müller", "jmueller", "juergen.mueller", people)
  docs = "ou=Docs/KB\\+Ops\\, EU," people
  entry(docs, 1, 30)
  printf "objectClass: organizationalUnit\nou: Docs/KB+Ops, EU\n\n"
  hard_user(5, "cn=Kim Lee", "Kim Lee", "Lee", "kimlee", "kim.lee", docs)
  nhard = 5

  for (g = 1; g <= ngroups && g <= nusers; g++) {
    entry(sprintf("cn=group%04d,ou=groups,%s", g, base), 4, g)
    printf "objectClass: groupOfNames\ncn: group%04d\ndescription: generated group %d\n", g, g
    for (n = g; n <= nusers; n += ngroups) printf "member: %s\n", udn(n)
    printf "\n"
  }
  entry("cn=all-users,ou=groups," base, 5, 1)
  printf "objectClass: groupOfNames\ncn: all-users\ndescription: every user\n"
  for (n = 1; n <= nusers; n++) printf "member: %s\n", udn(n)
  for (i = 1; i <= nhard; i++) printf "member: %s\n", hard_dn[i]
  printf "\n"
  entry("cn=nested-leaf,ou=groups," base, 5, 2)
  printf "objectClass: groupOfNames\ncn: nested-leaf\n"
  if (nusers >= 1) printf "member: %s\n", udn(1)
  printf "member: %s\n\n", hard_dn[1]
  entry("cn=nested-mid,ou=groups," base, 5, 3)
  printf "objectClass: groupOfNames\ncn: nested-mid\nmember: cn=nested-leaf,ou=groups,%s\n", base
  if (nusers >= 2) printf "member: %s\n", udn(2)
  printf "\n"
  entry("cn=nested-top,ou=groups," base, 5, 4)
  printf "objectClass: groupOfNames\ncn: nested-top\nmember: cn=nested-mid,ou=groups,%s\n\n", base
  entry("cn=Sales\\, EMEA \\+ APAC,ou=groups," base, 5, 5)
  printf "objectClass: groupOfNames\ncn: Sales, EMEA + APAC\n"
  for (i = 2; i <= nhard; i++) printf "member: %s\n", hard_dn[i]
  if (nusers >= 3) printf "member: %s\n", udn(3)
  printf "\n"
}'
