"""Trust on the wire: who the parties are, their keys, personal data sealed to its reader, authenticated
messages and files. Pure apart from reading and writing key files."""
