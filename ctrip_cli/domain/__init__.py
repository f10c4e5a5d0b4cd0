"""The rules about money and status: the status vocabulary, the one transition path,
and what a payment still owes the treasury."""
