#!/usr/bin/env bash
# Deterministic LDIF seed for the Domino LDAP emulation (slapd, NULL suffix, domino.schema; loaded with
# slapadd by domino.sh).
#
#   scripts/testenv/domino-seed.sh USERS > seed.ldif          USERS >= 50 (the deny-list group needs a member)
#
# Env: USER_PW      password of every person                    (default Passw0rd!)
#      SYNC_PW      password of the sync account                (default SyncPassw0rd!)
#      LOCK_DENIED  1 (default): members of CN=Terminated Users get pwdAccountLockedTime 000001010000Z, so
#                   ppolicy refuses their binds (49) -- the emulation of "Not access server"; 0: they can bind
#
# Content (N = USERS, n = 1..N, NNNNN = n with 5 digits, F/L = first/last name pools below, indexed by n):
#   O=Acme                               organization (the certifier); OU=Sales|Marketing|IT,O=Acme
#   CN=Mail1,O=Acme                      dominoServer (the mailServer of everybody)
#   CN=dirgate sync,O=Acme               sync account (organizationalRole + simpleSecurityObject, SYNC_PW;
#                                        deliberately NOT a dominoPerson, so person counts stay N + 3)
#   CN=Emulator Password Policy,O=Acme   ppolicy default policy: pwdLockout TRUE, pwdMaxFailure 0 (wrong
#                                        passwords never lock anybody; only pwdAccountLockedTime does)
#   CN=<F><NNNNN> <L>,OU=<ou>,O=Acme     N dominoPerson, ou = Sales|Marketing|IT for n % 3 = 1|2|0:
#       cn: <F><NNNNN> <L>  and  cn: <f><l><NNNNN>  (full name + short form = ShortName, all lower case)
#       uid: <f><l><NNNNN> (ShortName; f = first letter of F)   sn: <L>   givenName: <F><NNNNN>
#       mail = internetAddress: <f..><NNNNN>.<l..>@acme.test (e.g. anna00001.meyer@acme.test)
#       displayName <F><NNNNN> <L>/<ou>/Acme, mailFile mail/<uid>.nsf, mailServer CN=Mail1,O=Acme,
#       mailDomain Acme, mailSystem 1, dominoUNID, userPassword {SSHA} of USER_PW (hashed once per run),
#       availableForDirSync 0 if n % 20 == 0 else 1;  checkPassword 2 ("ID locked") if n % 40 == 0 else 0
#   special names (dominoPerson, availableForDirSync 1, checkPassword 0, never denied):
#       CN=Pat O'Brien\, Jr.,OU=Sales,O=Acme   cn "Pat O'Brien, Jr." + pobrien   uid pobrien   pat.obrien@acme.test
#       CN=R&D/Ops \+ QA,OU=IT,O=Acme          cn "R&D/Ops + QA" + rdopsqa       uid rdopsqa   rd-ops-qa@acme.test
#       CN=Jürgen Müller,OU=IT,O=Acme (UTF-8)  cn "Jürgen Müller" + jmueller     uid jmueller  juergen.mueller@acme.test
#   flat dominoGroups at the ROOT of the DIT (no O=; a search based at O=Acme does not see them):
#       CN=All Staff          groupType 0  every person (N + 3)
#       CN=Sales Team         groupType 0  the persons of OU=Sales (Marketing Team, IT Team likewise)
#       CN=Sales Leads        groupType 2  user 4, Pat O'Brien
#       CN=Leadership         groupType 2  CN=Sales Leads (nested), user 7
#       CN=Terminated Users   groupType 3  (deny list only, listCategory Deny Access) every 50th user;
#                                          availableForDirSync 0
#       CN=Newsletter         groupType 1  (mail only) mail = internetAddress newsletter@acme.test; users 2, 6,
#                                          Jürgen Müller
#       CN=Hidden Group       groupType 0  availableForDirSync 0; user 5, R&D/Ops + QA
#     all others availableForDirSync 1.
#   dominoUNID of every person, group and the server: upper-case md5 of its DN exactly as on the `dn:` line
#   (UTF-8 bytes), i.e. the same as `printf %s 'CN=Sales Team' | md5sum` -> deterministic across runs and
#   instances. Computed by perl's Digest::MD5 in one process (slapd depends on perl, so it is always there):
#   md5sum hashes whole files only, and one file or process per entry costs ~1 ms each here.
# Counts: dominoPerson N + 3, dominoGroup 9, entries N + 19; availableForDirSync=0 persons floor(N/20),
#   checkPassword=2 floor(N/40), deny-list members floor(N/50).
# Comment lines "# sample NAME DN" at the top name well-known DNs (domino.sh copies them into its env file):
#   USER_DN (user 1: ordinary; All Staff + Sales Team only), NESTED_USER_DN (user 4: Sales Leads -> Leadership),
#   DENIED_USER_DN (user 50), NOSYNC_USER_DN (user 20), IDLOCKED_USER_DN (user 40: checkPassword 2, and being
#   a 20th also availableForDirSync 0), SPECIAL_USER_DN (Pat O'Brien, Jr.), PLUS_USER_DN (R&D/Ops + QA),
#   UTF8_USER_DN (Jürgen Müller), DENY_GROUP_DN, NESTED_GROUP_DN (Sales Leads), PARENT_GROUP_DN (Leadership),
#   SERVER_DN.
set -euo pipefail

usage() { echo "usage: $0 USERS   (a number >= 50)" >&2; exit 2; }
[[ $# -eq 1 && $1 =~ ^[0-9]+$ ]] || usage
(($1 >= 50)) || usage
USERS=$1
USER_PW=${USER_PW:-Passw0rd!}
SYNC_PW=${SYNC_PW:-SyncPassw0rd!}
LOCK_DENIED=${LOCK_DENIED:-1}
[[ $LOCK_DENIED == [01] ]] || { echo "$0: LOCK_DENIED must be 0 or 1" >&2; exit 2; }
command -v slappasswd >/dev/null || { echo "$0: slappasswd missing (run scripts/testenv/install.sh)" >&2; exit 1; }
perl -MDigest::MD5 -e 1 2>/dev/null || { echo "$0: perl with Digest::MD5 missing (comes with slapd)" >&2; exit 1; }

# hash once per run: slappasswd per user would dominate the seed time
USER_HASH=$(slappasswd -h '{SSHA}' -s "$USER_PW")
SYNC_HASH=$(slappasswd -h '{SSHA}' -s "$SYNC_PW")

# awk writes the LDIF with "dominoUNID: @MD5@<DN>" placeholders, perl replaces them with the upper-case md5
LC_ALL=C awk -v nusers="$USERS" -v upw="$USER_HASH" -v spw="$SYNC_HASH" -v lockdenied="$LOCK_DENIED" -v q="'" '
function unid(dn) { return "@MD5@" dn }
function person(dn, cn, cn2, sn, gn, uid, mail, ou, sync, chk, locked) {
  printf "dn: %s\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n", dn
  printf "objectClass: inetOrgPerson\nobjectClass: dominoPerson\n"
  printf "cn: %s\ncn: %s\nsn: %s\ngivenName: %s\nuid: %s\ndisplayName: %s/%s/%s\n", cn, cn2, sn, gn, uid, cn, ou, org
  printf "mail: %s\ninternetAddress: %s\nmailFile: mail/%s.nsf\nmailServer: %s\nmailDomain: %s\nmailSystem: 1\n", \
    mail, mail, uid, server, org
  printf "availableForDirSync: %d\ncheckPassword: %d\ndominoUNID: %s\nuserPassword: %s\n", sync, chk, unid(dn), upw
  if (locked) printf "pwdAccountLockedTime: 000001010000Z\n"
  printf "\n"
}
function group_head(name, type, sync) {
  printf "dn: CN=%s\nobjectClass: top\nobjectClass: groupOfNames\nobjectClass: dominoGroup\ncn: %s\n", name, name
  printf "groupType: %d\navailableForDirSync: %d\ndominoUNID: %s\n", type, sync, unid("CN=" name)
}
function member(dn) { printf "member: %s\n", dn }
BEGIN {
  org = "Acme"; base = "O=" org; maildom = "acme.test"; server = "CN=Mail1," base
  nf = split("Anna Ben Carla Dan Eva Farid Grace", F, " ")
  nl = split("Meyer Smith Jones Brown Taylor Wilson Clark Nguyen Garcia Kowalski", L, " ")
  split("Sales Marketing IT", OUS, " ")   # user n is in OUS[((n - 1) % 3) + 1]
  for (n = 1; n <= nusers; n++) {
    first = sprintf("%s%05d", F[(n - 1) % nf + 1], n); last = L[(n - 1) % nl + 1]
    ou[n] = OUS[(n - 1) % 3 + 1]
    short[n] = sprintf("%s%s%05d", tolower(substr(first, 1, 1)), tolower(last), n)
    fn[n] = first; ln[n] = last
    udn[n] = sprintf("CN=%s %s,OU=%s,%s", first, last, ou[n], base)
  }
  pat = "CN=Pat O" q "Brien\\, Jr.,OU=Sales," base
  rdo = "CN=R&D/Ops \\+ QA,OU=IT," base
  jm = "CN=Jürgen Müller,OU=IT," base

  printf "# dirgate Domino emulation seed: %d users, written by scripts/testenv/domino-seed.sh\n", nusers
  printf "# sample USER_DN %s\n# sample NESTED_USER_DN %s\n# sample DENIED_USER_DN %s\n", udn[1], udn[4], udn[50]
  printf "# sample NOSYNC_USER_DN %s\n# sample IDLOCKED_USER_DN %s\n", udn[20], udn[40]
  printf "# sample SPECIAL_USER_DN %s\n# sample PLUS_USER_DN %s\n# sample UTF8_USER_DN %s\n", pat, rdo, jm
  printf "# sample DENY_GROUP_DN CN=Terminated Users\n# sample NESTED_GROUP_DN CN=Sales Leads\n"
  printf "# sample PARENT_GROUP_DN CN=Leadership\n# sample SERVER_DN %s\n\n", server

  printf "dn: %s\nobjectClass: top\nobjectClass: organization\no: %s\n\n", base, org
  for (i = 1; i <= 3; i++) printf "dn: OU=%s,%s\nobjectClass: top\nobjectClass: organizationalUnit\nou: %s\n\n", OUS[i], base, OUS[i]
  printf "dn: %s\nobjectClass: top\nobjectClass: dominoServer\ncn: Mail1\ndisplayName: Mail1/%s\n", server, org
  printf "dominoUNID: %s\n\n", unid(server)
  printf "dn: CN=dirgate sync,%s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n", base
  printf "cn: dirgate sync\nuserPassword: %s\ndescription: dirgate sync account (reads everything)\n\n", spw
  printf "dn: CN=Emulator Password Policy,%s\nobjectClass: device\nobjectClass: pwdPolicy\n", base
  printf "cn: Emulator Password Policy\npwdAttribute: userPassword\npwdLockout: TRUE\npwdMaxFailure: 0\n"
  printf "description: emulation only: lets pwdAccountLockedTime refuse binds of deny-list members\n\n"

  for (n = 1; n <= nusers; n++)
    person(udn[n], fn[n] " " ln[n], short[n], ln[n], fn[n], short[n], tolower(fn[n] "." ln[n]) "@" maildom, ou[n],
      n % 20 == 0 ? 0 : 1, n % 40 == 0 ? 2 : 0, lockdenied && n % 50 == 0)
  person(pat, "Pat O" q "Brien, Jr.", "pobrien", "O" q "Brien", "Pat", "pobrien", "pat.obrien@" maildom, "Sales", 1, 0, 0)
  person(rdo, "R&D/Ops + QA", "rdopsqa", "R&D/Ops + QA", "R&D", "rdopsqa", "rd-ops-qa@" maildom, "IT", 1, 0, 0)
  person(jm, "Jürgen Müller", "jmueller", "Müller", "Jürgen", "jmueller", "juergen.mueller@" maildom, "IT", 1, 0, 0)

  group_head("All Staff", 0, 1)
  for (n = 1; n <= nusers; n++) member(udn[n])
  member(pat); member(rdo); member(jm); printf "\n"
  for (i = 1; i <= 3; i++) {
    group_head(OUS[i] " Team", 0, 1)
    for (n = i; n <= nusers; n += 3) member(udn[n])
    if (OUS[i] == "Sales") member(pat)
    if (OUS[i] == "IT") { member(rdo); member(jm) }
    printf "\n"
  }
  group_head("Sales Leads", 2, 1); member(udn[4]); member(pat); printf "\n"
  group_head("Leadership", 2, 1); member("CN=Sales Leads"); member(udn[7]); printf "\n"
  group_head("Terminated Users", 3, 0); printf "listCategory: Deny Access\n"
  for (n = 50; n <= nusers; n += 50) member(udn[n])
  printf "\n"
  group_head("Newsletter", 1, 1); printf "mail: newsletter@%s\ninternetAddress: newsletter@%s\n", maildom, maildom
  member(udn[2]); member(udn[6]); member(jm); printf "\n"
  group_head("Hidden Group", 0, 0); member(udn[5]); member(rdo); printf "\n"
}' | perl -MDigest::MD5=md5_hex -pe 's/^dominoUNID: \@MD5\@(.*)$/"dominoUNID: " . uc(md5_hex($1))/e'
