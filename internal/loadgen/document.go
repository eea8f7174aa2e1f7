package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// docTemplate is a known template of the default document policy
// (params known_templates). pii marks the policy's pii_templates: those are
// decided contains_pii by template; the others by whether the text has an
// e-mail address or an IBAN (rule pii_pattern).
type docTemplate struct {
	id, mime string
	pii      bool
	render   func(g *Generator) (title, text string)
}

var knownTemplates = []docTemplate{
	{"invoice_v2", "application/pdf", false, (*Generator).invoiceText},
	{"payslip_v1", "application/pdf", true, (*Generator).payslipText},
	{"contract_nda_v3", "application/pdf", true, (*Generator).ndaText},
	{"marketing_flyer_v1", "image/png", false, (*Generator).flyerText},
	{"release_notes_v1", "text/markdown", false, (*Generator).releaseNotesText},
	{"id_scan_v1", "image/jpeg", true, (*Generator).idScanText},
}

// unknownTemplateIDs are ids the default policy does not know; with "" and
// an absent template_id they make a document ambiguous (rule
// sample_unknown_template).
var unknownTemplateIDs = []string{"invoice_v1", "scan_upload", "letter_freeform", "cv_v2", "medical_note_v1", "receipt_scan"}

// freeForm texts have no template, so sampling decides them: some carry
// personal data without the e-mail or IBAN a pattern would catch.
var freeForm = []struct {
	mime   string
	render func(g *Generator) (title, text string)
}{
	{"application/pdf", (*Generator).letterText},
	{"text/plain", (*Generator).meetingNotesText},
	{"application/pdf", (*Generator).cvText},
	{"text/plain", (*Generator).complaintText},
	{"application/pdf", (*Generator).medicalNoteText},
	{"image/jpeg", (*Generator).receiptText},
	{"application/pdf", (*Generator).invoiceText},
}

var companies = []string{"Nordwind Logistics GmbH", "Brightside Retail Ltd", "Atelier Lumière SARL", "Costa Verde S.p.A.",
	"Polder Systems B.V.", "Soluciones Iberia S.L.", "Harbour & Finch LLP", "Kestrel Analytics Inc."}

// document builds a document event in g.obj and returns its key (doc_id).
func (g *Generator) document(id string, ambiguous bool) string {
	r := g.rng
	owner := &g.accounts[g.zipf.Uint64()]
	docID := fmt.Sprintf("doc-%07d", r.IntN(g.s.documents))
	var mime, template, title, text string
	hasTemplate := true
	if ambiguous {
		f := pick(r, freeForm)
		mime = f.mime
		title, text = f.render(g)
		switch u := r.Float64(); {
		case u < 0.4:
			hasTemplate = false
		case u < 0.6:
			template = ""
		default:
			template = pick(r, unknownTemplateIDs)
		}
	} else {
		t := pick(r, knownTemplates)
		mime, template = t.mime, t.id
		title, text = t.render(g)
	}
	var size int64
	switch mime {
	case "image/png", "image/jpeg":
		size = 150_000 + r.Int64N(2_850_000)
	case "application/pdf":
		size = 20_000 + int64(len(text))*(8+r.Int64N(32))
	default:
		size = int64(len(text))
	}
	g.envelope(id, TypeDocument, owner.tenant)
	o := &g.obj
	o.add("doc_id", str(docID))
	o.add("owner_id", str(owner.user))
	o.add("mime", str(mime))
	o.add("size_bytes", integer(size))
	if hasTemplate {
		o.add("template_id", str(template))
	}
	o.add("title", str(title))
	o.add("text", str(text))
	return docID
}

func (g *Generator) date() string {
	r := g.rng
	return strconv.Itoa(2023+r.IntN(3)) + "-" + twoDigits(1+r.IntN(12)) + "-" + twoDigits(1+r.IntN(28))
}

func money(r *rand.Rand, lo, hi float64) string {
	return strconv.FormatFloat(round2(between(r, lo, hi)), 'f', 2, 64)
}

// invoiceText has bank details and a contact e-mail about half the time, so
// the same known template yields both contains_pii and no_pii.
func (g *Generator) invoiceText() (string, string) {
	r := g.rng
	no := "INV-" + strconv.Itoa(2023+r.IntN(3)) + "-" + digits(r, 6)
	supplier, customer := pick(r, companies), pick(r, companies)
	var b strings.Builder
	fmt.Fprintf(&b, "Invoice %s\nSupplier: %s\nCustomer: %s\nDate: %s\nItems:\n", no, supplier, customer, g.date())
	items := []string{"Pallet transport", "Consulting hours", "Software licence (annual)", "Office chairs", "Cloud storage 10 TB", "Translation services"}
	for range 1 + r.IntN(4) {
		fmt.Fprintf(&b, "  %d x %s  %s EUR\n", 1+r.IntN(9), pick(r, items), money(r, 20, 2500))
	}
	fmt.Fprintf(&b, "Total due: %s EUR within 30 days.\n", money(r, 100, 12000))
	if chance(r, 0.5) {
		p := g.person()
		fmt.Fprintf(&b, "Please transfer to IBAN %s (account holder %s). Questions: %s\n", p.iban, supplier, p.email)
	} else {
		b.WriteString("Paid by card on file. Thank you for your business.\n")
	}
	return "Invoice " + no + ".pdf", b.String()
}

func (g *Generator) payslipText() (string, string) {
	r, p := g.rng, g.person()
	return "Payslip " + p.last + " " + g.date()[:7] + ".pdf", fmt.Sprintf(
		"Payslip\nEmployer: %s\nEmployee: %s, employee no. %s\nAddress: %s, %s\nDate of birth: %s\n"+
			"Gross pay: %s EUR\nTax: %s EUR\nNet pay: %s EUR, paid to %s\n",
		pick(r, companies), p.name(), digits(r, 5), p.street, p.city, p.birth,
		money(r, 2500, 9000), money(r, 500, 2500), money(r, 1800, 6000), p.iban)
}

func (g *Generator) ndaText() (string, string) {
	r, p := g.rng, g.person()
	return "NDA " + p.last + ".pdf", fmt.Sprintf(
		"Mutual non-disclosure agreement\nThis agreement is made on %s between %s and %s, residing at %s, %s "+
			"(e-mail %s, phone %s).\n1. Confidential information means all non-public information disclosed by either party.\n"+
			"2. The receiving party shall not disclose confidential information for %d years.\nSigned: %s\n",
		g.date(), pick(r, companies), p.name(), p.street, p.city, p.email, p.phone, 2+r.IntN(4), p.name())
}

func (g *Generator) idScanText() (string, string) {
	r, p := g.rng, g.person()
	surname := strings.ToUpper(asciiFold(p.last))
	return "scan_" + digits(r, 6) + ".jpg", fmt.Sprintf(
		"OCR result (passport)\nSurname: %s\nGiven names: %s\nDate of birth: %s\nDocument no: %s\nAddress: %s, %s\nMRZ: P<%s<<%s<<<<<<<<<<\n",
		surname, p.first, p.birth, digits(r, 9), p.street, p.city,
		strings.ReplaceAll(surname, " ", "<"), strings.ToUpper(asciiFold(p.first)))
}

// flyerText and releaseNotesText carry no personal data and nothing that
// looks like an e-mail address or an IBAN.
func (g *Generator) flyerText() (string, string) {
	r := g.rng
	category := pick(r, []string{"garden furniture", "running shoes", "kitchen appliances", "winter coats", "board games"})
	return "Flyer " + category + ".png", fmt.Sprintf(
		"Seasonal sale!\nUp to %d%% off %s in all our stores from %s.\nMembers get free delivery on orders above %d euros.\n"+
			"While stocks last. Terms and conditions apply.\n", 10+5*r.IntN(10), category, g.date(), 30+10*r.IntN(7))
}

func (g *Generator) releaseNotesText() (string, string) {
	r := g.rng
	version := fmt.Sprintf("%d.%d.%d", 1+r.IntN(4), r.IntN(30), r.IntN(10))
	changes := []string{"Fixed a crash when opening large reports", "Improved start-up time by %d%%",
		"Added dark mode to the settings page", "Reduced memory use of the sync service by %d%%",
		"Deprecated the legacy export format", "Upgraded the bundled database driver"}
	var b strings.Builder
	fmt.Fprintf(&b, "# Release %s\n\n", version)
	for _, i := range r.Perm(len(changes))[:2+r.IntN(4)] {
		line := changes[i]
		if strings.Contains(line, "%d") {
			line = fmt.Sprintf(line, 5+r.IntN(40))
		}
		b.WriteString("- " + line + "\n")
	}
	return "Release notes " + version + ".md", b.String()
}

func (g *Generator) letterText() (string, string) {
	r, p, to := g.rng, g.person(), g.person()
	return "Letter to " + to.last + ".pdf", fmt.Sprintf(
		"Dear %s,\nfollowing our call on %s I am sending the signed forms for the account change. "+
			"Please call me back on %s if anything is missing.\nKind regards,\n%s\n%s\n%s\n",
		to.name(), g.date(), p.phone, p.name(), p.street, p.city) + pick(r, []string{"", "P.S. My new address is effective next month.\n"})
}

func (g *Generator) meetingNotesText() (string, string) {
	r := g.rng
	topic := pick(r, []string{"Q3 planning", "incident review", "data retention policy", "office move", "vendor selection"})
	return "Notes " + topic + ".txt", fmt.Sprintf(
		"Meeting notes: %s (%s)\nAttendees: platform team, finance team\n- Agreed to revisit the budget in %d weeks.\n"+
			"- Action: draft a proposal for the steering group.\n- Open question: timeline for the migration.\n",
		topic, g.date(), 2+r.IntN(6))
}

func (g *Generator) cvText() (string, string) {
	r, p := g.rng, g.person()
	return "CV " + p.name() + ".pdf", fmt.Sprintf(
		"Curriculum vitae\n%s\nBorn %s\n%s, %s\nEmail: %s\nPhone: %s\nExperience: %d years as %s at %s.\n",
		p.name(), p.birth, p.street, p.city, p.email, p.phone, 2+r.IntN(20),
		pick(r, []string{"accountant", "software engineer", "nurse", "sales manager"}), pick(r, companies))
}

func (g *Generator) complaintText() (string, string) {
	r, p := g.rng, g.person()
	return "Complaint " + digits(r, 5) + ".txt", fmt.Sprintf(
		"Order %s arrived damaged on %s. I would like a replacement or a refund to the original payment method.\n%s\n",
		digits(r, 6), g.date(), pick(r, []string{"Thanks, " + p.first, "Regards", "Sent from my phone"}))
}

func (g *Generator) medicalNoteText() (string, string) {
	r, p := g.rng, g.person()
	return "Note " + p.last + ".pdf", fmt.Sprintf(
		"Patient: %s, born %s\nSeen on %s for %s. Fit to return to work in %d days.\nContact: %s\n",
		p.name(), p.birth, g.date(), pick(r, []string{"a sprained ankle", "influenza", "a routine check-up", "back pain"}),
		1+r.IntN(14), p.phone)
}

func (g *Generator) receiptText() (string, string) {
	r := g.rng
	return "receipt_" + digits(r, 6) + ".jpg", fmt.Sprintf(
		"RECEIPT\nStore %s\n%s\nCoffee 2.80\nSandwich 6.40\nTOTAL %s\nCard payment approved. Thank you!\n",
		digits(r, 4), g.date(), money(r, 5, 60))
}
