library(testthat)
library(rmsprop)

test_check("rmsprop")
