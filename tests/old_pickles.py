"""Pickles of float64 MLPs written by mlpfast before the session record's version 2 (which
added the warm-up and cosine schedule's fields), with what resuming them gave then.

Written by the build of commit bb37857 (session record version 1):

    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 3)); y = rng.integers(0, 2, 30)
    val = (X[:10], y[:10])
    m = mlpfast.MLP([3, 4, 2], dtype="float64", seed=0)
    m.fit(X, y, epochs=2, batch_size=8, validation_data=val, **settings)
    pickle.dumps(m)                   # the pickle, base64
    m.fit(X, y, epochs=2, batch_size=8, validation_data=val, resume=True, **settings)
    m.learning_rate                   # the rate after, float.hex
    [every weight then bias, flattened, float.hex]

Each entry: settings, the rate after, the parameters after, the pickle.
"""

# fmt: off
V1_PICKLES = {
    "momentum_adaptive": (
        {
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "schedule": "adaptive",
            "n_iter_no_change": 1,
            "tol": 10.0,
        },
        "0x1.47ae147ae147bp-6",
        [
            "-0x1.126e09fee2f8ep-1", "0x1.a3b81326dd9aap-1", "0x1.bc642b8786c9dp-1",
            "0x1.d6f65f1fb9c20p-1", "0x1.3b0d75f8a5791p-1", "0x1.4657fafac0332p-1",
            "0x1.6039550387755p-2", "-0x1.f74a2c2c3fe31p-3", "0x1.b749a1fe44bd2p-1",
            "-0x1.05fa1565d2844p-1", "0x1.05d606d45c637p-1", "-0x1.e66c0be1cf746p-6",
            "0x1.243e9aa2a44bdp-8", "-0x1.b86604373f940p-9", "-0x1.0c251c1a665b8p-5",
            "0x1.2c0b5800c1ec7p-7", "-0x1.cd03a170fcbacp-4", "-0x1.0d15d34f94656p-2",
            "-0x1.6ae38bf3f40c4p-1", "0x1.1a886f967ae59p-2", "0x1.9646564e1bc00p-1",
            "-0x1.c5936bef767d4p-1", "-0x1.1115a0f74c444p-1", "-0x1.86ca1546df5d6p-3",
            "0x1.a59a03858adfcp-6", "-0x1.a59a03858ae00p-6",
        ],
        (
            "gASVDAUAAAAAAACMD21scGZhc3QuX3BpY2tsZZSMDF9yZWJ1aWxkX21scJSTlChdlChLA0sESwJljARyZWx1",
            "lIwHc29mdG1heJSMB2Zsb2F0NjSUXZQojBZudW1weS5fY29yZS5tdWx0aWFycmF5lIwMX3JlY29uc3RydWN0",
            "lJOUjAVudW1weZSMB25kYXJyYXmUk5RLAIWUQwFilIeUUpQoSwFLA0sEhpRoC4wFZHR5cGWUk5SMAmY4lImI",
            "h5RSlChLA4wBPJROTk5K/////0r/////SwB0lGKJQ2COL+6f4Cbhv6rZbTKBO+o/nWx4uELG6z8gnPvxZW/t",
            "P5FXil/XsOM/MgOsr39l5D9VdzhQlQPWPzH+w8KidM+/0kvkH5p06z9EKF1WoV/gvzfGRW1gXeA/RvccvsBm",
            "nr+UdJRiaApoDUsAhZRoD4eUUpQoSwFLBIWUaBeJQyC9RCqq6UNyP0D5c0Nghmu/uGWmwVHCoL/HHgyAtcCC",
            "P5R0lGKGlGgKaA1LAIWUaA+HlFKUKEsBSwRLAoaUaBeJQ0Csyw8XOtC8v1ZG+TRd0dC/xEA/vziu5r9Zrmf5",
            "hqjRPwC84WRlZOk/1Gf3vjZZ7L9ExHQPWhHhv9b1bVShbMi/lHSUYmgKaA1LAIWUaA+HlFKUKEsBSwKFlGgX",
            "iUMQ/K1YOKBZmj8Arlg4oFmav5R0lGKGlGVC+gIAAG1scGZzZXNzAQAAAAAAAAAIAAAAAAAAAF8ugHxN6zih",
            "BurEcQzTAWKgLcDgiyEHFGFNUvwo8TsEPAAAAAAAAAAAAgAAAAAAAABhqCXd7EPnPwHizZSTsPzmPwFmZmZm",
            "ZmbmP5qZmZmZmbk/3BD/2Ok85j8B1837QANr5T8BMzMzMzMz4z+amZmZmZm5PwEAAAAAAAAAAM3MzMzMzOw/",
            "AAgAAAAAAAAAAgAAAAAAAAAMAAAAAAAAAAATxetx5xU/19aFD4Bf0L83ZF6dnjHPP2Hhe1l1Vqy/F3/sz1mT",
            "pb/mf+8ZYkGtv3didKcDRd0/PRWq5IWLfr9oaHpCZF+aPzGARCrr1uK/tNy2XLRl1b9sg7vvXzOkvwAAAAAA",
            "AAAABAAAAAAAAAC6BGAfjHGUv5pHkLhTBZ0/ABC1/YcfuT/MaPbDdcCmvwAAAAAAAAAACAAAAAAAAAAgcM+q",
            "fN2rvx1wz6p83as/cdiJpRwotr9u2ImlHCi2P7ifwOTE6b8/uJ/A5MTpv7/oZVR3t7zBP+hlVHe3vMG/AAAA",
            "AAAAAAACAAAAAAAAAHFqWy4rM8G/c2pbLiszwT8AAAAAAAAAAAGamZmZmZm5PwAAAAAAAPA/AgAAAAAAAAAA",
            "AAAAAADgPwIAAAAAAAAAmpmZmZmZuT8BAWZmZmZmZuY/AQAAAAAAAAACAAAAAAAAAAwAAAAAAAAAji/un+Am",
            "4b+q2W0ygTvqP51seLhCxus/IJz78WVv7T+RV4pf17DjPzIDrK9/ZeQ/VXc4UJUD1j8x/sPConTPv9JL5B+a",
            "dOs/RChdVqFf4L83xkVtYF3gP0b3HL7AZp6/BAAAAAAAAAC9RCqq6UNyP0D5c0Nghmu/uGWmwVHCoL/HHgyA",
            "tcCCPwgAAAAAAAAArMsPFzrQvL9WRvk0XdHQv8RAP784rua/Wa5n+Yao0T8AvOFkZWTpP9Rn9742Wey/RMR0",
            "D1oR4b/W9W1UoWzIvwIAAAAAAAAA/K1YOKBZmj8Arlg4oFmav5R0lFKULg==",
        ),
    ),
    "adam": (
        {
            "optimizer": "adam",
            "lr": 0.02,
            "lr_decay": 0.9,
        },
        "0x1.adfb506dd69d5p-7",
        [
            "-0x1.303abe514337bp-1", "0x1.e0c82ea998c36p-1", "0x1.94598dbc283bbp-1",
            "0x1.15e3d6f0fbd77p+0", "0x1.4e74254d8f5bep-1", "0x1.4d4477c26d9c3p-1",
            "0x1.31e7280334e30p-2", "-0x1.12cb07449156dp-2", "0x1.a1604b48991eep-1",
            "-0x1.9d19710fae044p-2", "0x1.494bcebba8fb8p-1", "0x1.4d67ac9d058d2p-8",
            "0x1.46c6f584c9e42p-5", "-0x1.f259f3719b066p-6", "-0x1.d8ba84bd4cffcp-8",
            "0x1.6a9387ec0f2fbp-4", "-0x1.4d625e4a28950p-4", "-0x1.2cfe2419496edp-2",
            "-0x1.512b942ad8f13p-1", "0x1.ce310008895edp-3", "0x1.5373e77b08fd7p-1",
            "-0x1.82c0fd1c63babp-1", "-0x1.46854a38a8deap-1", "-0x1.6216e082d9e7ep-4",
            "0x1.241326e9e1740p-4", "-0x1.241326e9e1741p-4",
        ],
        (
            "gASV+wQAAAAAAACMD21scGZhc3QuX3BpY2tsZZSMDF9yZWJ1aWxkX21scJSTlChdlChLA0sESwJljARyZWx1",
            "lIwHc29mdG1heJSMB2Zsb2F0NjSUXZQojBZudW1weS5fY29yZS5tdWx0aWFycmF5lIwMX3JlY29uc3RydWN0",
            "lJOUjAVudW1weZSMB25kYXJyYXmUk5RLAIWUQwFilIeUUpQoSwFLA0sEhpRoC4wFZHR5cGWUk5SMAmY4lImI",
            "h5RSlChLA4wBPJROTk5K/////0r/////SwB0lGKJQ2AzF/aTCJ/iv638rV4xe+s/KjvS3Utg6z/d19nONxvw",
            "PxjPY2raHOQ/9y+CCgWW5D/0+d2XpLvUP4pUtHPiZNG/h0rS4hLE6j/j0lk3A93ev9kvoWqcNeI/2yjkJLGi",
            "l7+UdJRiaApoDUsAhZRoD4eUUpQoSwFLBIWUaBeJQyDxFpZLLFydP2FRhy8gEZe/pKz7FpWilL8HXTODUNWq",
            "P5R0lGKGlGgKaA1LAIWUaA+HlFKUKEsBSwRLAoaUaBeJQ0CBd3tl7Te4v19bXmFw99G/r6Xh+Y6K5b9f8Fjd",
            "ZsLOP5oElUE/J+c/brCqmxAc6r+YiIy/hG/iv4nkDpT288K/lHSUYmgKaA1LAIWUaA+HlFKUKEsBSwKFlGgX",
            "iUMQBdg/aQ1Rqz8H2D9pDVGrv5R0lGKGlGVC6QIAAG1scGZzZXNzAQAAAAAAAAAIAAAAAAAAAF8ugHxN6zih",
            "BurEcQzTAWKgLcDgiyEHFGFNUvwo8TsEPAAAAAAAAAAAAgAAAAAAAAAEvYb/nwLnPwH+vjIlhSbnPwFmZmZm",
            "ZmbmP3sUrkfhepQ/jgEB8Os35j8BDx2BA/6a5j8BZmZmZmZm5j8830+Nl26SPwEBAAAAAAAAAM3MzMzMzOw/",
            "K4cW2c737z86jDDijnlFPggAAAAAAAAAAgAAAAAAAAAMAAAAAAAAAG605Z59lkI/uhpQGJ4Pmr8jnmAuMA6c",
            "P/KriJLylHe/FW6RJAkcZb9W6WuTBV55v+L7+AeM8JI/teMPyjhgWL8F+fD8/o1dP5Xwt9Px162/Uc2090wJ",
            "l7+t49z1rmpyvwwAAAAAAAAAXB/tgBP0uj4XVkvRw7oFPwfzzAOlCxA/nMCuzc3mvz7ndwXwMcjPPuOWJhF/",
            "Xys/Rv/2WDM+QD8Z4v73FuDiPg7IG5MTZrQ+jlGcGURPKz8jcBrXMmn/PpdtezW4Ke4+BAAAAAAAAACM2huI",
            "MotUvwxGXm+gCWQ/M4VHJY7Igb/L4PbpdzdxvwQAAAAAAAAAPSIsv9Aywj6ldA6HYi74PozXKAVuQxk/0HXH",
            "ecjb0z4IAAAAAAAAAOB5g3+4jm6/6nmDf7iObj+ieI+zLh6Av6V4j7MuHoA/sq93ibJEij+xr3eJskSKv11d",
            "ecTsuYs/W115xOy5i78IAAAAAAAAAEgq7knprQ4/SSruSemtDj8PAw5iLqQGPxADDmIupAY/h3oVsTq56j6H",
            "ehWxOrnqPhGnFewaWPM+EKcV7BpY8z4CAAAAAAAAAI7hnbXygY2/mOGdtfKBjT8CAAAAAAAAAGgeUm3MzSM/",
            "ax5SbczNIz8BexSuR+F6lD/NzMzMzMzsPwAAAAAAAAAAAAAAAAAA4D8CAAAAAAAAAIPix5i7lpA/AQEAAAAA",
            "AADw/wAAAAAAAAAAAAAAAAAAAACUdJRSlC4=",
        ),
    ),
}
# fmt: on
