import io

import pytest

from graphkit.train import Logger


def test_logger_selects_first_best_validation_epoch():
    logger = Logger(2)
    for row in [(0.5, 0.4, 0.3), (0.9, 0.7, 0.6), (1.0, 0.7, 0.9), (0.95, 0.6, 0.8)]:
        logger.add_result(0, row)
    for row in [(0.6, 0.5, 0.4), (0.8, 0.9, 0.7)]:
        logger.add_result(1, row)
    assert logger.run_statistics(0) == {
        "highest_train": 1.0, "highest_valid": 0.7, "final_train": 0.9, "final_test": 0.6,
    }
    stats = logger.statistics()
    assert stats["final_test"][0] == pytest.approx(0.65)
    assert stats["final_test"][1] == pytest.approx(0.0707106781, rel=1e-6)  # sample std
    assert stats["highest_valid"][0] == pytest.approx(0.8)


def test_logger_prints_percentages_like_ogb():
    logger = Logger(1)
    logger.add_result(0, (0.5, 0.25, 0.125))
    out = io.StringIO()
    logger.print_statistics(0, file=out)
    assert out.getvalue().splitlines() == [
        "Run 01:", "Highest Train: 50.00", "Highest Valid: 25.00", "  Final Train: 50.00",
        "   Final Test: 12.50",
    ]
    out = io.StringIO()
    logger.print_statistics(file=out)
    assert "   Final Test: 12.50 ± 0.00" in out.getvalue()


def test_logger_bad_inputs():
    with pytest.raises(ValueError, match="runs"):
        Logger(0)
    logger = Logger(1)
    with pytest.raises(ValueError, match="train, valid, test"):
        logger.add_result(0, (0.1, 0.2))
    with pytest.raises(ValueError, match="run must lie"):
        logger.add_result(1, (0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="no results"):
        logger.statistics()
    with pytest.raises(ValueError, match="the valid value of run 0 is NaN"):
        logger.add_result(0, (0.1, float("nan"), 0.3))
    with pytest.raises(ValueError, match="the train value of run 0 is NaN"):
        logger.add_result(0, (float("nan"), 0.2, 0.3))
    logger.add_result(0, (0.1, 0.2, float("nan")))  # no test split
    assert logger.run_statistics(0)["final_train"] == 0.1
