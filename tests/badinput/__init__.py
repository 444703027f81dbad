"""Bad input of every kind: each case ends in gcdial's own clear error or a correct result."""
