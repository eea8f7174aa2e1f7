package pii_test

import (
	"fmt"

	"github.com/triage-dev/triage/internal/pii"
)

func ExampleMask() {
	fmt.Println(pii.Mask("Refund jane@example.com to DE89 3704 0044 0532 0130 00, or call +44 20 7946 0958."))
	// Output: Refund [EMAIL] to [IBAN], or call [PHONE].
}

func ExampleKinds() {
	fmt.Println(pii.Kinds("card 4111 1111 1111 1111, reply to [EMAIL]"))
	// Output: [email card]
}
