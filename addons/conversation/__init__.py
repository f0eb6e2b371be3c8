"""In-chat commands: the parser, the handlers (validate everything, then apply all or nothing), and
`prepare`, which runs commands and redaction on a request before it leaves."""
