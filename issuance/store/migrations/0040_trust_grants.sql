-- Grants of the tables that came with the parties' keys (0032) and the key rotations (0039), by the rule of
-- 0038: each role holds exactly what issuance/store/roles.py DECISIONS records.
--
-- party_keys: the public keys every verifier and sealer loads (the night, the consumers, the simulated banks
-- and branches read them); the operators register and revoke them.
-- key_rotations, key_rotation_progress: written by `issuance keys rotate` (an operator); the night and every
-- consumer (the bureau's, the simulated banks' and branches') read them to refuse to start while a
-- blind-index rotation is unfinished.

REVOKE ALL ON party_keys, key_rotations, key_rotation_progress FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON party_keys TO issuance_operator;
GRANT SELECT ON party_keys TO issuance_nightly, issuance_consumer, issuance_bank_simulator,
    issuance_branch_simulator;
GRANT SELECT, INSERT, UPDATE, DELETE ON key_rotations, key_rotation_progress TO issuance_operator;
GRANT USAGE ON SEQUENCE key_rotations_rotation_id_seq TO issuance_operator;
GRANT SELECT ON key_rotations, key_rotation_progress TO issuance_nightly, issuance_consumer,
    issuance_bank_simulator, issuance_branch_simulator;

-- A simulated bank records the requests it cannot read as the bureau's dead letters, once per source position
-- (INSERT ... ON CONFLICT (the position) DO NOTHING RETURNING id, to put the event in the outbox once): it may
-- read the id and the position, no other column (no payload, no reason, no detail).
GRANT SELECT (id, source_topic, source_topic_id, source_partition, source_offset) ON dead_letters
    TO issuance_bank_simulator;
