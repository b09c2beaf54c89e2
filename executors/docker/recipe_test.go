package docker

import (
	"strings"
	"testing"
)

func TestRecipeHash(t *testing.T) {
	base := BuildRecipe{From: "openbis/jh:1", PythonPackages: []string{"prettytable"}, RPackages: []string{"r-base64enc"}}
	h0, err := base.Hash("sha256:aaa")
	if err != nil {
		t.Fatal(err)
	}
	same := base
	if h, _ := same.Hash("sha256:aaa"); h != h0 {
		t.Error("same recipe and base: hash differs")
	}
	variants := map[string]struct {
		r    BuildRecipe
		base string
	}{
		"other base id":    {base, "sha256:bbb"},
		"extra python pkg": {BuildRecipe{From: "openbis/jh:1", PythonPackages: []string{"prettytable", "numpy"}, RPackages: []string{"r-base64enc"}}, "sha256:aaa"},
		"package order":    {BuildRecipe{From: "openbis/jh:1", PythonPackages: []string{"prettytable"}, RPackages: []string{"r-base64enc", "r-x"}}, "sha256:aaa"},
		"other from":       {BuildRecipe{From: "openbis/jh:2", PythonPackages: []string{"prettytable"}, RPackages: []string{"r-base64enc"}}, "sha256:aaa"},
		"extra line":       {BuildRecipe{From: "openbis/jh:1", PythonPackages: []string{"prettytable"}, RPackages: []string{"r-base64enc"}, ExtraLines: []string{"ENV A=1"}}, "sha256:aaa"},
	}
	for name, v := range variants {
		if h, _ := v.r.Hash(v.base); h == h0 {
			t.Errorf("%s: hash unchanged", name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	r := BuildRecipe{From: "openbis/jh:1", PythonPackages: []string{"prettytable==3.9", "numpy>=1.26"}, RPackages: []string{"r-base64enc"}, ExtraLines: []string{"ENV A=1"}}
	df, err := r.Dockerfile()
	if err != nil {
		t.Fatal(err)
	}
	s := string(df)
	for _, want := range []string{
		"FROM openbis/jh:1\n",
		"export LC_ALL=en_US.utf8",
		"/vagrant_installation/miniconda3/bin/pip install prettytable==3.9 'numpy>=1.26'\n",
		"conda install -c r -y r-base64enc\n",
		"\nENV A=1",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q:\n%s", want, s)
		}
	}
	bad := []BuildRecipe{
		{From: "jh:1\nRUN evil"},
		{From: "jh:1", PythonPackages: []string{"a\nRUN evil"}},
		{From: "jh:1", PythonPackages: []string{"a b"}},
		{From: "jh:1", ExtraLines: []string{"RUN a\nRUN b"}},
		{From: "jh:1", PythonPackages: []string{"x;rm${IFS}-rf"}},
		{From: "jh:1", PythonPackages: []string{"--index-url=http://evil/"}},
		{From: "jh:1", ExtraLines: []string{"RUN apt-get install -y \\"}},
	}
	for _, r := range bad {
		if _, err := r.Dockerfile(); err == nil {
			t.Errorf("recipe %+v: want a validation error", r)
		}
	}
}
