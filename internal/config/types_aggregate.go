package config

// Aggregate is a server entry that serves other servers' tools, prompts
// and resources behind one URL instead of running a command of its own
// (servers.NAME.aggregate).
type Aggregate struct {
	// Members are the member servers' names in the order they were written,
	// or, for "*", every server that is not an aggregate, sorted. The order
	// decides the order of merged lists.
	Members []string
	// All is true when the members were written as "*".
	All bool
	// Prefix is when a member's names get "MEMBER" + Separator in front:
	// PrefixAlways (default), PrefixConflicts or PrefixNever.
	Prefix string
	// Separator joins the member's name and the item's name (default "__").
	Separator string
	// OnMemberError is what a member that cannot start or ends does to the
	// aggregate: MemberErrorSkip (default: its items disappear and the
	// others keep working) or MemberErrorFail (the aggregate fails).
	OnMemberError string
	// PageSize is how many items one page of a merged list holds
	// (default 100).
	PageSize int
}

// Prefix modes (Aggregate.Prefix).
const (
	// PrefixAlways prefixes every name with its member's.
	PrefixAlways = "always"
	// PrefixConflicts prefixes a name only when two members expose it.
	PrefixConflicts = "conflicts"
	// PrefixNever never prefixes; a name two members expose is served by
	// neither (the collision is logged).
	PrefixNever = "never"
)

// Member error policies (Aggregate.OnMemberError).
const (
	MemberErrorSkip = "skip"
	MemberErrorFail = "fail"
)

// Aggregate defaults.
const (
	defaultPrefix        = PrefixAlways
	defaultSeparator     = "__"
	defaultOnMemberError = MemberErrorSkip
	defaultPageSize      = 100
	minPageSize          = 1
	maxPageSize          = 1000
	// maxSeparator bounds the separator: it is repeated in every name,
	// which has at most 64 characters.
	maxSeparator = 8
)

// IsAggregate reports whether the server is an aggregate of others.
func (s *Server) IsAggregate() bool { return s != nil && s.Aggregate != nil }
