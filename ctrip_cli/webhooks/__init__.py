"""Webhook delivery: Standard Webhooks signing, the retry ladder, the SSRF guard and
the concurrent httpx sender. Only this package (and the CLI) imports httpx."""
