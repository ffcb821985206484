import { useId } from 'preact/hooks';
import { type Lang, LANGUAGES } from '../lib/i18n.ts';
import { lang, setLang, t } from '../state.ts';

const NAMES: Record<Lang, string> = { en: 'English', ru: 'Русский' };

/** The language switch; the API is then asked for its errors in the same language. */
export function LanguageSwitch() {
  const id = useId();
  return (
    <span class="lang">
      <label for={id}>{t('lang.label')}</label>
      <select id={id} value={lang.value} onChange={(e) => setLang(e.currentTarget.value as Lang)}>
        {LANGUAGES.map((l) => (
          <option key={l} value={l} lang={l}>
            {NAMES[l]}
          </option>
        ))}
      </select>
    </span>
  );
}
