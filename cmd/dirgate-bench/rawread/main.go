// Command rawread is make bench's reference for a full sync: one paged
// read of every user and group, with stock go-ldap and go-asn1-ber. It is
// its own module so that dirgate's patched BER decoder (third_party) does
// not apply; dirgate-bench also times the same read with the patched one.
//
// Usage: rawread URL BIND_DN BIND_PW BASE. It prints the entry count.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/go-ldap/ldap/v3"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: rawread URL BIND_DN BIND_PW BASE")
		os.Exit(2)
	}
	n, err := read(os.Args[1], os.Args[2], os.Args[3], os.Args[4])
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawread:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}

// Filter and Attributes are what dirgate's OpenLDAP connector asks for.
const Filter = "(|(|(objectClass=inetOrgPerson)(objectClass=posixAccount))(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup)))"

var Attributes = []string{"*", "entryUUID", "entryCSN", "pwdAccountLockedTime", "pwdChangedTime", "createTimestamp",
	"modifyTimestamp", "creatorsName", "modifiersName", "structuralObjectClass"}

func read(url, bindDN, bindPW, base string) (int, error) {
	c, err := ldap.DialURL(url)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Bind(bindDN, bindPW); err != nil {
		return 0, err
	}
	paging := ldap.NewControlPaging(1000)
	n := 0
	for {
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			Filter, Attributes, []ldap.Control{paging})
		res := c.SearchAsync(context.Background(), req, 1000)
		var cookie []byte
		for res.Next() {
			if res.Entry() != nil {
				n++
			}
			if pc, ok := ldap.FindControl(res.Controls(), ldap.ControlTypePaging).(*ldap.ControlPaging); ok {
				cookie = pc.Cookie
			}
		}
		if err := res.Err(); err != nil {
			return n, err
		}
		if len(cookie) == 0 {
			return n, nil
		}
		paging.SetCookie(cookie)
	}
}
