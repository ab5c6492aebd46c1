/* What every test extension exports: add(a, b) -> a + b, and describe(), which
   calls into libc so the binary has a GLIBC_ symbol version to check. */
#include <Python.h>
#include <stdio.h>

static PyObject *
add(PyObject *self, PyObject *args)
{
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b))
        return NULL;
    return PyLong_FromLong(a + b);
}

static PyObject *
describe(PyObject *self, PyObject *args)
{
    char text[64];
    long value;
    if (!PyArg_ParseTuple(args, "l", &value))
        return NULL;
    snprintf(text, sizeof(text), "test extension got %ld", value);  /* a runtime call */
    return Py_BuildValue("s", text);
}

static PyMethodDef add_methods[] = {
    {"add", add, METH_VARARGS, "Return a + b."},
    {"describe", describe, METH_VARARGS, "Format a number (calls libc)."},
    {NULL, NULL, 0, NULL}
};
