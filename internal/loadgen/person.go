package loadgen

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// person is the personal data a document may carry. Every piece looks real
// (an IBAN has valid check digits) so that pattern rules and models react to
// it as they would to real data, but all of it is invented: e-mail domains are
// the reserved example.* domains and phone numbers come from fiction ranges.
type person struct {
	first, last, email, phone, street, city, iban, birth string
}

var (
	firstNames = []string{"Anna", "Lukas", "Sophie", "Jonas", "Emma", "Noah", "Mia", "Liam", "Olivia", "Mateo",
		"Chloé", "Louis", "Giulia", "Marco", "Sofía", "Pablo", "Aoife", "Seán", "Maja", "Piotr", "Oliver", "Amelia",
		"James", "Isla", "Ethan", "Grace", "Hannah", "Felix", "Lena", "David"}
	lastNames = []string{"Schmidt", "Müller", "Schneider", "Fischer", "Weber", "Martin", "Bernard", "Dubois",
		"Rossi", "Russo", "Ferrari", "García", "Fernández", "López", "Murphy", "Kelly", "Kowalski", "Nowak",
		"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "de Vries", "Jansen", "Novak", "Andersson",
		"Johansson", "Moreau"}
	emailDomains = []string{"example.com", "example.org", "example.net"}
)

// place is a street, city and the phone and IBAN formats that go with them.
type place struct {
	streets      []string
	city         string
	phonePrefix  string
	phoneDigits  int
	ibanCountry  string
	ibanBBANForm string // 'n' digit, 'a' upper-case letter
}

var places = []place{
	{[]string{"Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee"}, "10115 Berlin", "+49 30 ", 7, "DE", "nnnnnnnnnnnnnnnnnn"},
	{[]string{"High Street", "Station Road", "Church Lane", "Victoria Road"}, "London SW1A 1AA", "+44 20 7946 ", 4, "GB", "aaaannnnnnnnnnnnnn"},
	{[]string{"rue de la Paix", "avenue Victor Hugo", "rue du Moulin"}, "75002 Paris", "+33 1 99 00 ", 4, "FR", "nnnnnnnnnnnnnnnnnnnnnnn"},
	{[]string{"Via Roma", "Corso Italia", "Via Garibaldi"}, "00184 Roma", "+39 06 6980 ", 4, "IT", "annnnnnnnnnnnnnnnnnnnnn"},
	{[]string{"Kerkstraat", "Dorpsstraat", "Molenweg"}, "1012 AB Amsterdam", "+31 20 555 ", 4, "NL", "aaaannnnnnnnnn"},
	{[]string{"Calle Mayor", "Gran Vía", "Calle del Sol"}, "28013 Madrid", "+34 91 555 ", 4, "ES", "nnnnnnnnnnnnnnnnnnnn"},
}

func (g *Generator) person() person {
	r := g.rng
	p := person{first: pick(r, firstNames), last: pick(r, lastNames)}
	pl := pick(r, places)
	local := strings.ToLower(asciiFold(p.first) + "." + strings.ReplaceAll(asciiFold(p.last), " ", ""))
	p.email = local + "@" + pick(r, emailDomains)
	p.phone = pl.phonePrefix + digits(r, pl.phoneDigits)
	p.street = pick(r, pl.streets) + " " + strconv.Itoa(1+r.IntN(180))
	p.city = pl.city
	p.iban = iban(r, pl.ibanCountry, pl.ibanBBANForm)
	p.birth = strconv.Itoa(1950+r.IntN(55)) + "-" + twoDigits(1+r.IntN(12)) + "-" + twoDigits(1+r.IntN(28))
	return p
}

func (p person) name() string { return p.first + " " + p.last }

// iban returns an IBAN with correct ISO 13616 check digits, unspaced so the
// common IBAN patterns match it.
func iban(r *rand.Rand, country, form string) string {
	var bban strings.Builder
	for _, c := range form {
		if c == 'a' {
			bban.WriteByte(byte('A' + r.IntN(26)))
		} else {
			bban.WriteByte(byte('0' + r.IntN(10)))
		}
	}
	// Check digits: 98 - (BBAN + country + "00" as a number, letters A=10..Z=35) mod 97.
	mod := 0
	for _, c := range bban.String() + country + "00" {
		if c >= 'A' {
			mod = (mod*100 + int(c-'A'+10)) % 97
		} else {
			mod = (mod*10 + int(c-'0')) % 97
		}
	}
	return country + twoDigits(98-mod) + bban.String()
}

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// asciiFold maps the accented letters of the name lists to ASCII for e-mail
// local parts.
var asciiFold = strings.NewReplacer("é", "e", "á", "a", "í", "i", "ó", "o", "ü", "ue", "ß", "ss").Replace
