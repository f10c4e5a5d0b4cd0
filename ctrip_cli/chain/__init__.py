"""Everything that talks to a chain or holds key material; the only home of web3 and eth_account."""
