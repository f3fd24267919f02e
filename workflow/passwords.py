"""The staff password policy: one function, `check_password`, for every path that sets a password.

Why these rules:
- At least 12 characters. Staff accounts open every customer's photo, e-mail and payment, and most
  sign in with a password alone (TOTP is required for admins only), so we take the stronger end of
  NIST SP 800-63B's range (8 minimum with a second factor, 15 for a password alone) while keeping
  passphrases easy: a four-word phrase passes, no composition rules (digits, symbols) are asked for.
- Not a common or breached password. zxcvbn (a maintained library) ships the 30,000 most common
  passwords from breach corpora plus dictionaries of names and words, and estimates how many guesses
  a password needs; we refuse anything it puts under 10^8 guesses (its score 3, "safely unguessable"
  against online and throttled offline attacks), which also catches `12345678901234`, keyboard walks,
  repeats and a common password with `1!` added.
- Not built from the account's own name.
"""

from __future__ import annotations

from zxcvbn import zxcvbn

MIN_LENGTH = 12
MAX_LENGTH = 200  # argon2 takes any length; a cap keeps zxcvbn's work bounded
MIN_SCORE = 3  # zxcvbn: 3 is at least 10^8 guesses


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why and what would pass."""


def check_password(password: str, *, name: str = "") -> None:
    """Raise `WeakPassword` unless `password` is acceptable for the account `name`."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"The password must be at least {MIN_LENGTH} characters long (this one has {len(password)}); "
            "a few unrelated words make a good one."
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"The password must be at most {MAX_LENGTH} characters long.")
    if name and name.lower() in password.lower():
        raise WeakPassword("The password must not contain the account's name.")
    verdict = zxcvbn(password, user_inputs=[name, "vitrine"] if name else ["vitrine"])
    common = any(
        match.get("pattern") == "dictionary" and match.get("dictionary_name") == "passwords"
        for match in verdict["sequence"]
        if len(verdict["sequence"]) == 1
    )
    if common:
        raise WeakPassword("This password is on the list of common or breached passwords; choose another.")
    if verdict["score"] < MIN_SCORE:
        why = verdict["feedback"].get("warning") or "It would be guessed too quickly."
        raise WeakPassword(f"This password is too easy to guess: {why.rstrip('.')}. Add words or make it longer.")
