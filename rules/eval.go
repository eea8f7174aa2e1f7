package rules

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"go.yaml.in/yaml/v3"
)

// ActionSample is the action of a rule, or a type's default, that cannot
// decide the event itself: the event goes on to sampling.
const ActionSample = "sample"

// DefaultRuleID is the RuleID of a Result when no rule matched.
const DefaultRuleID = "default"

// ErrUnknownType is wrapped by Result.Err when Eval is asked for a type the
// Set does not describe. Callers normally find out earlier, from Set.Type.
var ErrUnknownType = errors.New("unknown event type")

// costLimit bounds one condition's evaluation in CEL cost units (about one
// per operation, plus a share of the length of strings and lists walked).
// Conditions are configuration, so a careless nested comprehension over a
// large list must fail fast — as a rule error, which samples the event —
// rather than stall the pipeline. The default policy's costliest condition,
// two regexes over a full 16 KiB text, costs about 50,000.
const costLimit = 1_000_000

var celAdapter = types.DefaultTypeAdapter

// celEnv is built once: building an environment costs milliseconds, and
// every rule in every file shares the same declarations.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("params", cel.MapType(cel.StringType, cel.DynType)),
		// Events carry amounts as double and params as int: `event.amount >
		// 5000` must compare the numbers, not fail on the types.
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		cel.Function("mayHaveIBAN", cel.MemberOverload("string_may_have_iban", []*cel.Type{cel.StringType}, cel.BoolType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.MaybeNoSuchOverloadErr(v)
				}
				return types.Bool(MayHaveIBAN(string(s)))
			}))),
	)
})

// MayHaveIBAN reports whether s has two capital ASCII letters followed by
// two digits somewhere: every IBAN begins so (country code, check digits),
// and a text without them has none. It is the cheap test in front of an
// IBAN pattern, as the rules' s.mayHaveIBAN(): one pass over the bytes,
// where Go's regexp engine costs about 30 ns a byte on a long text without
// a literal to look for.
func MayHaveIBAN(s string) bool {
	run := 0 // capitals just before, then digits: 0-1 capitals, 2 = two capitals, 3 = and a digit
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z' && run == 3:
			run = 1 // "AB1C": C may begin the next one
		case 'A' <= c && c <= 'Z':
			run = min(run+1, 2)
		case '0' <= c && c <= '9' && run == 2:
			run = 3
		case '0' <= c && c <= '9' && run == 3:
			return true
		default:
			run = 0
		}
	}
	return false
}

// Result is what Eval decided for one event.
type Result struct {
	// Type is the event type evaluated.
	Type string
	// RuleID is the rule that matched or failed, or DefaultRuleID.
	RuleID string
	// Action is one of the type's outcomes, or ActionSample.
	Action string
	// Reason is the rule's reason, "no rule matched" for the default, or
	// "rule error".
	Reason string
	// Err is set when a rule's condition failed at run time (Action is then
	// ActionSample, the conservative choice, and RuleID names the rule) or
	// when the type is unknown (Action is then empty).
	Err error
}

// Hit counts how often one rule, or a type's default, decided an event.
type Hit struct {
	Type, RuleID string
	// Count is the events the rule matched (for DefaultRuleID, the events
	// no rule matched).
	Count uint64
	// Errors is the evaluations of the rule's condition that failed, each
	// sending its event to sampling.
	Errors uint64
}

// Eval decides one event of type typ, which Validate has normalised. Rules
// are tried in file order and the first match wins; when none matches the
// type's default applies. A condition that fails at run time (a missing
// optional field read without has(), a cost limit) stops the walk with
// ActionSample rather than guessing. Eval is safe for concurrent use.
func (s *Set) Eval(typ string, ev map[string]any) Result {
	t, ok := s.types[typ]
	if !ok {
		return Result{Type: typ, Err: fmt.Errorf("rules: eval %q: %w", typ, ErrUnknownType)}
	}
	// Wrap the event once for all the rules; resolving a raw map would wrap
	// it again on every rule.
	act := &activation{event: types.NewStringInterfaceMap(celAdapter, ev), params: t.params}
	for i := range t.Rules {
		r := &t.Rules[i]
		out, _, err := r.prg.Eval(act)
		if err == nil {
			b, isBool := out.(types.Bool)
			if !isBool {
				err = fmt.Errorf("condition returned %s, want bool", out.Type())
			} else if !b {
				continue
			} else {
				r.stats.hits.Add(1)
				return Result{Type: t.Name, RuleID: r.ID, Action: r.Action, Reason: r.Reason}
			}
		}
		r.stats.errors.Add(1)
		return Result{Type: t.Name, RuleID: r.ID, Action: ActionSample, Reason: "rule error",
			Err: fmt.Errorf("rules: %s rule %q: %w", t.Name, r.ID, err)}
	}
	t.defaults.hits.Add(1)
	return Result{Type: t.Name, RuleID: DefaultRuleID, Action: t.Default, Reason: "no rule matched"}
}

// Hits returns every rule's counters, types sorted, rules in file order,
// each type's default last. Counters belong to the Set, so they start at
// zero again after a reload.
func (s *Set) Hits() []Hit {
	var hits []Hit
	for _, name := range s.names {
		t := s.types[name]
		for _, r := range t.Rules {
			hits = append(hits, Hit{Type: name, RuleID: r.ID, Count: r.stats.hits.Load(), Errors: r.stats.errors.Load()})
		}
		hits = append(hits, Hit{Type: name, RuleID: DefaultRuleID, Count: t.defaults.hits.Load()})
	}
	return hits
}

// activation hands CEL the two variables without building a map per event.
type activation struct{ event, params ref.Val }

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.event, true
	case "params":
		return a.params, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// compile compiles r.When once, at Parse, and checks it: it must be a bool,
// and every `event.x` and `params.x` it reads must be declared, so a typo
// fails the file instead of sending every event to sampling at run time.
func compile(t *Type, r *Rule) error {
	env, err := celEnv()
	if err != nil {
		return fmt.Errorf("compile: environment: %w", err)
	}
	checked, iss := env.Compile(r.When)
	if iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return fmt.Errorf("compile: %s", strings.Join(msgs, "; "))
	}
	if out := checked.OutputType(); !out.IsExactType(cel.BoolType) {
		return fmt.Errorf("compile: condition is %s, want bool (compare explicitly, e.g. `event.flag == true`)", out)
	}
	if err := checkRefs(t, checked.NativeRep()); err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	// OptOptimize precompiles constant regexes and turns `x in [...]`
	// literals into set lookups.
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	// Tracking cost at run time doubles the time of a simple condition, so
	// it is only paid where needed: when the worst case cannot be bounded
	// statically. Sizes are bounded by the record size for event values and
	// known exactly for params.
	est, err := env.EstimateCost(checked, sizes{t})
	if err != nil || est.Max > costLimit {
		opts = append(opts, cel.CostLimit(costLimit))
	}
	r.prg, err = env.Program(checked, opts...)
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	return nil
}

// sizes bounds the sizes of values a condition can see, for the static
// cost estimate: anything read from the event is no larger than the record,
// and params are known.
type sizes struct{ t *Type }

func (s sizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	switch {
	case len(path) == 0:
		return nil
	case path[0] == "event":
		return &cost.SizeEstimate{Min: 0, Max: uint64(s.t.MaxBytes)}
	case path[0] == "params" && len(path) == 1:
		return exactSize(len(s.t.Params))
	case path[0] == "params" && len(path) == 2:
		switch v := s.t.Params[path[1]].(type) {
		case string:
			return exactSize(len(v))
		case []string:
			return exactSize(len(v))
		case []any:
			return exactSize(len(v))
		case map[string]any:
			return exactSize(len(v))
		}
	}
	return nil // unknown: the estimate is unbounded and the limit is tracked
}

func exactSize(n int) *cost.SizeEstimate {
	return &cost.SizeEstimate{Min: uint64(n), Max: uint64(n)}
}

func (sizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// checkRefs reports the first `event.x` whose field the schema does not
// declare, or `params.x` the section does not define.
func checkRefs(t *Type, a *ast.AST) error {
	var err error
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if err != nil || e.Kind() != ast.SelectKind {
			return
		}
		sel := e.AsSelect()
		if sel.Operand().Kind() != ast.IdentKind {
			return
		}
		name, field := sel.Operand().AsIdent(), sel.FieldName()
		var problem string
		switch {
		case name == "event":
			if _, ok := t.fieldIndex[field]; !ok {
				problem = "event field %q is not declared in fields"
			}
		case name == "params":
			if _, ok := t.Params[field]; !ok {
				problem = "params.%s is not defined"
			}
		}
		if problem != "" {
			loc := a.SourceInfo().GetStartLocation(sel.Operand().ID())
			err = fmt.Errorf("%d:%d: "+problem, loc.Line(), loc.Column()+1, field)
		}
	}))
	return err
}

// params parses a type's params: section into values CEL reads cheaply.
func (p *parser) params(n *yaml.Node, w where) map[string]any {
	out := map[string]any{}
	p.mapping(n, w, nil, func(name string, _, v *yaml.Node) {
		var x any
		err := v.Decode(&x)
		if err == nil {
			x, err = paramValue(x)
		}
		if err != nil {
			p.fail(v, w, "params.%s: %w", name, err)
			return
		}
		out[name] = x
	})
	return out
}

// paramValue converts a YAML-decoded value for CEL: int to int64, and a
// list of strings to []string, which CEL's `in` scans without converting
// each element.
func paramValue(x any) (any, error) {
	switch v := x.(type) {
	case nil, string, bool, int64, float64, time.Time:
		return v, nil
	case int:
		return int64(v), nil
	case uint64:
		if v > math.MaxInt64 {
			return nil, fmt.Errorf("%d overflows int64", v)
		}
		return int64(v), nil
	case []any:
		strs := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				break
			}
			strs = append(strs, s)
		}
		if len(strs) == len(v) {
			return strs, nil
		}
		out := make([]any, len(v))
		for i, e := range v {
			ce, err := paramValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = ce
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ce, err := paramValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = ce
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T (mapping keys must be strings)", x)
}
