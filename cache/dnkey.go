package cache

// DNKey returns the normalised DN under which the cache indexes entries and
// member values (dn.Key; the lower-cased string when s does not parse), so
// that a caller matching DNs agrees with the cache's membership index.
func DNKey(s string) string { return dnKeyOf(s) }
