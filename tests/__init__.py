"""The test suite, a package so that each folder's modules import by their full name
(tests.data.test_images) and two folders may hold test files of the same name. A folder per
layer of facegan/ holds the tests of that layer's modules; the tests here span the layers."""
