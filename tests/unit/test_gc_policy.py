import gc

from issuance.gc_policy import BATCH_THRESHOLDS, use_batch_thresholds


def test_batch_thresholds_apply_once_and_freeze_the_set_up_heap() -> None:
    use_batch_thresholds()
    assert gc.get_threshold() == BATCH_THRESHOLDS
    frozen = gc.get_freeze_count()
    assert frozen > 0  # the modules and set-up state are left out of later collections
    use_batch_thresholds()
    assert gc.get_freeze_count() == frozen  # a second call changes nothing
